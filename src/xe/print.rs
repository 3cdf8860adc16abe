//! xe's output layouts (`ocaml/xapi-cli-server/cli_printer.ml`): records as `name ( RO): value`
//! lines, the first label padded on the right and the rest on the left to the longest label + 4,
//! each record followed by two blank lines; `--minimal` gathers the first value of every record
//! (or a list's items) into one comma-separated line, with `,` and `\` escaped.

/// One record: `(label, value)` pairs, labels already carrying their `( RO)`-style suffix.
pub type Record = Vec<(String, String)>;

/// Collects a command's output; `finish` answers the text for stdout.
#[derive(Debug, Default)]
pub struct Out {
    minimal: bool,
    text: String,
    /// `--minimal`'s gathered lines, newest first (as `make_printer`'s buffer).
    gathered: Vec<String>,
}

impl Out {
    pub fn new(minimal: bool) -> Out {
        Out { minimal, ..Default::default() }
    }

    pub fn minimal(&self) -> bool {
        self.minimal
    }

    /// `PTable`: records.
    pub fn table(&mut self, records: &[Record]) {
        if self.minimal {
            if !records.is_empty() && records.iter().all(|r| !r.is_empty()) {
                let names: Vec<String> = records.iter().map(|r| escape_commas(&r[0].1)).collect();
                self.gathered.insert(0, names.join(","));
            }
        } else {
            for r in records {
                self.text.push_str(&multi_line_record(r));
                self.text.push_str("\n\n");
            }
        }
    }

    /// `PList`: values, one per line (one comma-separated line with `--minimal`).
    pub fn list<S: AsRef<str>>(&mut self, items: &[S]) {
        if self.minimal {
            let items: Vec<String> = items.iter().map(|s| escape_commas(s.as_ref())).collect();
            self.gathered.insert(0, items.join(","));
        } else {
            for s in items {
                self.text.push_str(s.as_ref());
                self.text.push('\n');
            }
        }
    }

    /// `PMsg`: a line of text (dropped with `--minimal`).
    pub fn msg(&mut self, text: &str) {
        if !self.minimal {
            self.text.push_str(text);
            self.text.push('\n');
        }
    }

    /// Writes what has been printed so far to stdout (progress bars interleave with it).
    pub fn flush_to_stdout(&mut self) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(self.text.as_bytes());
        let _ = stdout.flush();
        self.text.clear();
    }

    /// The text for stdout once the command has succeeded: `--minimal` prints its one line even
    /// when nothing was gathered.
    pub fn finish(mut self) -> String {
        if self.minimal {
            self.text.push_str(&self.gathered.join(","));
            self.text.push('\n');
        }
        self.text
    }
}

/// `cli_printer.ml` `multi_line_record`.
pub fn multi_line_record(r: &Record) -> String {
    let width = 4 + r.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (i, (k, v)) in r.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i == 0 {
            out.push_str(&format!("{k:<width$}"));
        } else {
            out.push_str(&format!("{k:>width$}"));
        }
        out.push_str(": ");
        out.push_str(v);
    }
    out.push('\n');
    out
}

fn escape_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ',' => out.push_str("\\,"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Record {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn records_align_as_xe_does() {
        let mut out = Out::new(false);
        out.table(&[rec(&[("uuid ( RO)", "u1"), ("name-label ( RW)", "a"), ("power-state ( RO)", "halted")])]);
        let expected = "uuid ( RO)           : u1\n     name-label ( RW): a\n    power-state ( RO): halted\n\n\n";
        assert_eq!(out.finish(), expected);
    }

    #[test]
    fn minimal_joins_first_values_and_escapes() {
        let mut out = Out::new(true);
        out.table(&[rec(&[("uuid ( RO)", "a,b")]), rec(&[("uuid ( RO)", "c\\d")])]);
        assert_eq!(out.finish(), "a\\,b,c\\\\d\n");
        let out = Out::new(true);
        assert_eq!(out.finish(), "\n");
    }
}
