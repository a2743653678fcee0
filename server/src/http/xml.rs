//! The little XML AWS's HTTP protocols answer in: escaped text and a writer of nested
//! elements.

use std::fmt::{Display, Write};

/// XML text, escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes elements in order; `open`/`close` nest, `leaf` writes one text element.
#[derive(Default)]
pub struct Writer(String);

impl Writer {
    /// A document with its XML declaration and the root element opened in `namespace`.
    pub fn document(root: &str, namespace: &str) -> Self {
        let mut w = Self(String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        if namespace.is_empty() {
            let _ = write!(w.0, "<{root}>");
        } else {
            let _ = write!(w.0, "<{root} xmlns=\"{namespace}\">");
        }
        w
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.0, "<{tag}>");
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.0, "</{tag}>");
        self
    }

    /// `<tag>value</tag>`, escaped; nothing for an empty value (AWS leaves unset fields out).
    pub fn leaf(&mut self, tag: &str, value: impl Display) -> &mut Self {
        let text = value.to_string();
        if !text.is_empty() {
            let _ = write!(self.0, "<{tag}>{}</{tag}>", escape(&text));
        }
        self
    }

    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_empty_leaves_left_out() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let mut w = Writer::document("R", "urn:x");
        w.open("a").leaf("b", "1<2").leaf("c", "").close("a").close("R");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"urn:x\"><a><b>1&lt;2</b></a></R>"
        );
    }
}
