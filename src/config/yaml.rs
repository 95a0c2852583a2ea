//! A YAML document as a tree whose every node knows its line and column, built from yaml-rust2's
//! event parser. The typed decoder ([`super::decode`]) reads it so that every error can name the
//! line of the value it refuses, which serde-style deserialisers lose.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Where a node starts (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// One node of the document.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) mark: Mark,
    pub(crate) value: Value,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A scalar as written; `quoted` tells `"1"` (a string) from `1`.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order; keys are kept as nodes so a duplicate can be reported at its line.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// What the node is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> String {
        match &self.value {
            Value::Scalar { text, .. } if text.is_empty() => "nothing".into(),
            Value::Scalar { text, .. } => format!("{text:?}"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// A syntax error: the parser's message and where it stopped.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) mark: Mark,
    pub(crate) message: String,
}

fn mark(m: Marker) -> Mark {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Mark { line: m.line(), col: m.col() + 1 }
}

/// Builds the tree from parser events: open collections on a stack, finished nodes attached to
/// the collection under them.
#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>)>,
    root: Option<Node>,
    aliases: bool,
}

impl Builder {
    fn push_done(&mut self, node: Node) {
        let Some((parent, pending_key)) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match &mut parent.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => match pending_key.take() {
                Some(k) => entries.push((k, node)),
                None => *pending_key = Some(node),
            },
            Value::Scalar { .. } => unreachable!("scalars are never open"),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, m: Marker) {
        let mark = mark(m);
        match ev {
            Event::Scalar(text, style, _, _) => {
                let quoted = !matches!(style, yaml_rust2::scanner::TScalarStyle::Plain);
                self.push_done(Node { mark, value: Value::Scalar { text, quoted } });
            }
            Event::SequenceStart(..) => self.stack.push((Node { mark, value: Value::Seq(Vec::new()) }, None)),
            Event::MappingStart(..) => self.stack.push((Node { mark, value: Value::Map(Vec::new()) }, None)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_done(node);
                }
            }
            // Anchors and aliases would let one value stand at several lines; a configuration
            // file has no need of them, so they are refused rather than half supported.
            Event::Alias(_) => {
                self.aliases = true;
                self.push_done(Node { mark, value: Value::Scalar { text: String::new(), quoted: false } });
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parses one YAML document. An empty file is an empty mapping.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut b, false)
        .map_err(|e| SyntaxError { mark: mark(*e.marker()), message: e.info().to_owned() })?;
    if b.aliases {
        return Err(SyntaxError {
            mark: Mark { line: 1, col: 1 },
            message: "anchors and aliases (&name, *name) are not supported".into(),
        });
    }
    Ok(b.root.unwrap_or(Node { mark: Mark { line: 1, col: 1 }, value: Value::Map(Vec::new()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines() {
        let root = parse("a: 1\nb:\n  - x\n  - \"2\"\n").unwrap();
        let Value::Map(entries) = &root.value else { panic!("not a map") };
        assert_eq!(entries[0].1.mark.line, 1);
        let Value::Seq(items) = &entries[1].1.value else { panic!("not a seq") };
        assert_eq!((items[0].mark.line, items[1].mark.line), (3, 4));
        assert!(matches!(&items[1].value, Value::Scalar { quoted: true, .. }));
    }

    #[test]
    fn a_syntax_error_has_a_line() {
        let e = parse("a: 1\nb: \"open\n").unwrap_err();
        assert!(e.mark.line >= 2, "{e:?}");
    }
}
