module github.com/libproxy/libproxy/examples/go

go 1.22

require github.com/libproxy/libproxy/bindings/go v0.0.0

replace github.com/libproxy/libproxy/bindings/go => ../../bindings/go
