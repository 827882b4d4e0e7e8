//! Reference tables (`tables/<name>.json` or `.csv`) and the `lookup` function.
//!
//! A table is a JSON object from key to value. A JSON file is either that object or an array
//! of objects that each carry a `key` field; a CSV file has a header row, and each data row
//! becomes an object of strings keyed by its first column (so `lookup('stores', 'S014')` is
//! `{"store_id": "S014", "utc_offset": "-04:00", ...}`).

use serde_json::{Map, Value};

use super::{FnDef, Tables, current_tables, show, type_name};

impl Tables {
    /// Parses one table file into its JSON object form. `name` is the table's name (for
    /// messages), `path` decides the format by its extension (`.json` or `.csv`).
    pub fn parse_file(name: &str, path: &str, bytes: &[u8]) -> Result<Value, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format!("table `{name}` ({path}) is not UTF-8: {e}"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            parse_json_table(text).map_err(|m| format!("table `{name}` ({path}): {m}"))
        } else if lower.ends_with(".csv") {
            parse_csv_table(text).map_err(|m| format!("table `{name}` ({path}): {m}"))
        } else {
            Err(format!(
                "table `{name}` ({path}): unsupported file type; a table is a `.json` or `.csv` file"
            ))
        }
    }

    /// The tables with `table` added under `name` (replacing one of the same name).
    pub fn with_table(mut self, name: impl Into<String>, table: Value) -> Tables {
        self.tables.insert(name.into(), table);
        self
    }
}

fn parse_json_table(text: &str) -> Result<Value, String> {
    let value = crate::json::parse_payload(text.as_bytes()).map_err(|e| format!("the file {e}"))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Array(rows) => {
            let mut table = Map::new();
            for (i, row) in rows.into_iter().enumerate() {
                let Value::Object(fields) = &row else {
                    return Err(format!(
                        "element {i} is {} {}, expected an object with a `key` field",
                        type_name(&row),
                        show(&row)
                    ));
                };
                let key = match fields.get("key") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                    Some(other) => {
                        return Err(format!(
                            "element {i}: `key` {} must be a string or an integer",
                            show(other)
                        ));
                    }
                    None => return Err(format!("element {i} has no `key` field")),
                };
                if table.contains_key(&key) {
                    return Err(format!("element {i}: duplicate key `{key}`"));
                }
                table.insert(key, row);
            }
            Ok(Value::Object(table))
        }
        other => Err(format!(
            "a JSON table must be an object (key to value) or an array of objects with a `key` \
             field, not {}",
            type_name(&other)
        )),
    }
}

fn parse_csv_table(text: &str) -> Result<Value, String> {
    let mut records = parse_csv(text)?.into_iter();
    let Some((_, header)) = records.next() else {
        return Err("empty CSV: expected a header row".to_string());
    };
    for (i, column) in header.iter().enumerate() {
        if column.trim().is_empty() {
            return Err(format!("line 1: column {} has no name", i + 1));
        }
        if header[..i].contains(column) {
            return Err(format!("line 1: duplicate column `{column}`"));
        }
    }
    let mut table = Map::new();
    let mut first_line = std::collections::HashMap::new();
    for (line, fields) in records {
        if fields.len() != header.len() {
            return Err(format!(
                "line {line}: {} field{} but the header has {} columns",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" },
                header.len()
            ));
        }
        let key = fields[0].clone();
        if key.is_empty() {
            return Err(format!(
                "line {line}: empty key (first column `{}`)",
                header[0]
            ));
        }
        if let Some(first) = first_line.insert(key.clone(), line) {
            return Err(format!(
                "line {line}: duplicate key `{key}` (first on line {first})"
            ));
        }
        let row: Map<String, Value> = header
            .iter()
            .cloned()
            .zip(fields.into_iter().map(Value::String))
            .collect();
        table.insert(key, Value::Object(row));
    }
    Ok(Value::Object(table))
}

/// Splits CSV text (RFC 4180: `,` separators, `"` quoting with `""` escapes, newlines inside
/// quotes, LF or CRLF) into records, each with the line number it starts on. Empty lines are
/// skipped. A quote inside an unquoted field, text after a closing quote and an unclosed quote
/// are errors.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut record_line = 1;
    // Whether the current field was quoted, and whether the record has any content yet.
    let mut quoted = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if !quoted && field.is_empty() => {
                quoted = true;
                started = true;
                let open_line = line;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                        None => {
                            return Err(format!("line {open_line}: unclosed quoted field"));
                        }
                    }
                }
                match chars.peek() {
                    None | Some(',') | Some('\n') | Some('\r') => {}
                    Some(other) => {
                        return Err(format!(
                            "line {line}: unexpected `{other}` after a closing quote"
                        ));
                    }
                }
            }
            '"' => {
                return Err(format!(
                    "line {line}: quote inside an unquoted field (quote the whole field and \
                     double the quote)"
                ));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
                started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if started || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push((record_line, std::mem::take(&mut fields)));
                }
                quoted = false;
                started = false;
                line += 1;
                record_line = line;
            }
            other => {
                if quoted {
                    return Err(format!(
                        "line {line}: unexpected `{other}` after a closing quote"
                    ));
                }
                field.push(other);
                started = true;
            }
        }
    }
    if started || !field.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}

fn lookup(args: &[Value]) -> Result<Value, String> {
    let Some(table_name) = args[0].as_str() else {
        return Err(format!("table name {} must be a string", show(&args[0])));
    };
    let tables = current_tables();
    let table = tables.as_ref().and_then(|t| t.tables.get(table_name));
    let Some(table) = table else {
        let known: Vec<&str> = tables
            .as_ref()
            .map(|t| t.tables.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if known.is_empty() {
            return Err(format!(
                "unknown table `{table_name}`: no reference tables are loaded (add \
                 `tables/{table_name}.csv` or `.json` to the project)"
            ));
        }
        let hint = match crate::suggest::did_you_mean(table_name, known.iter().copied()) {
            Some(best) => format!("; did you mean `{best}`?"),
            None => String::new(),
        };
        return Err(format!(
            "unknown table `{table_name}`{hint} (known tables: {})",
            known.join(", ")
        ));
    };
    let default = args.get(2);
    let key = match &args[1] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => {
            return match default {
                Some(d) => Ok(d.clone()),
                None => Err(format!(
                    "key is null (looking up in table `{table_name}`); pass a default as the \
                     third argument to allow a missing key"
                )),
            };
        }
        other => {
            return Err(format!(
                "key {} must be a string or a number, not {}",
                show(other),
                type_name(other)
            ));
        }
    };
    let found = match table {
        Value::Object(map) => map.get(&key),
        _ => None,
    };
    match (found, default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d.clone()),
        (None, None) => Err(format!("key `{key}` not in table `{table_name}`")),
    }
}

pub const LOOKUP: FnDef = FnDef {
    name: "lookup",
    min_args: 2,
    max_args: 3,
    call: lookup,
    doc: "The row of a reference table for a key, or the default when the key is missing.",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(usize, Vec<String>)> {
        parse_csv(text).expect("valid CSV")
    }

    #[test]
    fn csv_records_carry_their_starting_line() {
        let r = rows("a,b\n\"x\ny\",1\n\nc,2");
        assert_eq!(
            r,
            vec![
                (1, vec!["a".to_string(), "b".to_string()]),
                (2, vec!["x\ny".to_string(), "1".to_string()]),
                (5, vec!["c".to_string(), "2".to_string()]),
            ]
        );
    }

    #[test]
    fn csv_edge_cases() {
        assert_eq!(rows(""), Vec::<(usize, Vec<String>)>::new());
        assert_eq!(
            rows("a\r\nb\r\n"),
            vec![(1, vec!["a".into()]), (2, vec!["b".into()])]
        );
        assert_eq!(
            rows("a\rb"),
            vec![(1, vec!["a".into()]), (2, vec!["b".into()])]
        );
        assert_eq!(rows(",\n"), vec![(1, vec![String::new(), String::new()])]);
        assert_eq!(rows("\"\",x"), vec![(1, vec![String::new(), "x".into()])]);
        assert_eq!(rows("\"a\"\"b\""), vec![(1, vec!["a\"b".into()])]);
        assert_eq!(rows(" a ,b"), vec![(1, vec![" a ".into(), "b".into()])]);
        assert!(parse_csv("a,\"b").is_err());
        assert!(parse_csv("a,b\"c").is_err());
        assert!(parse_csv("\"a\" ,b").is_err());
    }
}
