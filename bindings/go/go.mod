module github.com/libproxy/libproxy/bindings/go

go 1.22
