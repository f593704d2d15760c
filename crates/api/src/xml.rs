//! A small XML writer for query-protocol responses, the response and error envelopes, and
//! ISO 8601 timestamps as XML services put them on the wire.

use crate::ApiError;
use berth_model::Timestamp;
use std::fmt::{Display, Write};

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// An XML document being written; element names are trusted, text is escaped.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Xml {
        Xml::default()
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "<{name}>");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// `<name>text</name>`.
    pub fn text(&mut self, name: &str, value: impl Display) -> &mut Self {
        let value = value.to_string();
        let _ = write!(self.out, "<{name}>{}</{name}>", escape(&value));
        self
    }

    /// `<name>text</name>` when there is a value.
    pub fn opt(&mut self, name: &str, value: Option<impl Display>) -> &mut Self {
        if let Some(v) = value {
            self.text(name, v);
        }
        self
    }

    /// `<name>…</name>` with what `body` writes inside.
    pub fn node(&mut self, name: &str, body: impl FnOnce(&mut Xml)) -> &mut Self {
        self.open(name);
        body(self);
        self.close(name)
    }

    /// A list: `<name><member>…</member>…</name>`.
    pub fn members<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut body: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.open(name);
        for item in items {
            self.open("member");
            body(self, item);
            self.close("member");
        }
        self.close(name)
    }

    /// A list of strings: `<name><member>a</member>…</name>`.
    pub fn strings<S: Display>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.members(name, items, |x, s| {
            let _ = write!(x.out, "{}", escape(&s.to_string()));
        })
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The response envelope of query-protocol action `action` in namespace `ns`.
pub fn response(action: &str, ns: &str, request_id: &str, result: &str) -> Vec<u8> {
    format!(
        "<{action}Response xmlns=\"{ns}\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    )
    .into_bytes()
}

/// The query protocol's error document: `Sender` faults for 4xx, `Receiver` for 5xx.
pub fn error(e: &ApiError, ns: &str, request_id: &str) -> Vec<u8> {
    let fault = if e.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{ns}\"><Error><Type>{fault}</Type><Code>{}</Code>\
         <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(e.code),
        escape(&e.message),
        escape(request_id)
    )
    .into_bytes()
}

/// `2024-05-01T12:30:45.123Z`.
pub fn iso8601(t: Timestamp) -> String {
    let ms = t.millis();
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_nested_documents() {
        let mut x = Xml::new();
        x.node("Rule", |x| {
            x.text("Priority", 5)
                .opt("Missing", None::<&str>)
                .strings("Values", ["/a&b", "<c>"])
                .members("Actions", [1, 2], |x, n| {
                    x.text("Order", n);
                });
        });
        assert_eq!(
            x.finish(),
            "<Rule><Priority>5</Priority><Values><member>/a&amp;b</member><member>&lt;c&gt;</member></Values>\
             <Actions><member><Order>1</Order></member><member><Order>2</Order></member></Actions></Rule>"
        );
    }

    #[test]
    fn envelopes() {
        let body = String::from_utf8(response("DeleteRule", "ns", "id-1", "")).unwrap();
        assert_eq!(
            body,
            "<DeleteRuleResponse xmlns=\"ns\"><DeleteRuleResult></DeleteRuleResult>\
             <ResponseMetadata><RequestId>id-1</RequestId></ResponseMetadata></DeleteRuleResponse>"
        );
        let e = ApiError::new("TargetGroupNotFound", 400, "no 'tg' <here>");
        let body = String::from_utf8(error(&e, "ns", "id-2")).unwrap();
        assert!(body.contains("<Type>Sender</Type><Code>TargetGroupNotFound</Code>"));
        assert!(body.contains("<Message>no &apos;tg&apos; &lt;here&gt;</Message>"));
        let body = String::from_utf8(error(&ApiError::server("x"), "ns", "id")).unwrap();
        assert!(body.contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn iso8601_timestamps() {
        assert_eq!(iso8601(Timestamp(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(Timestamp(951_782_400_000)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            iso8601(Timestamp(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(iso8601(Timestamp(-1)), "1969-12-31T23:59:59.999Z");
    }
}
