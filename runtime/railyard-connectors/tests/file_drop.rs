#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The file-drop input on real files in temporary directories: the POS batch exports, EU
//! exports (BOM, CRLF, `;`), CSV quoting, malformed files naming their line, the moves to
//! done/ and failed/, settling, and the content key.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::io::Write;

use railyard_connectors::file::{FileDrop, FileError, GRACE, SETTLE, content_key, file_key};
use railyard_core::diag::Span;
use railyard_core::model::pipeline::{CsvOptions, FileFormat, FileInput};
use railyard_core::spanned::Spanned;
use serde_json::{Value, json};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn config(format: FileFormat) -> FileInput {
    FileInput {
        dir: Spanned::new("inbox".to_string(), Span::default()),
        pattern: None,
        format,
        csv: None,
        done_dir: None,
        failed_dir: None,
    }
}

fn csv_config(delimiter: &str, header: bool) -> FileInput {
    FileInput {
        csv: Some(CsvOptions {
            delimiter: Some(delimiter.to_string()),
            header: Some(header),
        }),
        ..config(FileFormat::Csv)
    }
}

/// A project root with an `inbox/` and the drop reading it.
fn setup(cfg: &FileInput) -> (tempfile::TempDir, FileDrop) {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("inbox")).unwrap();
    let drop = FileDrop::new(cfg, root.path());
    (root, drop)
}

fn put(drop: &FileDrop, name: &str, bytes: &[u8]) -> PathBuf {
    let p = drop.dir().join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn malformed_line(e: &FileError) -> u64 {
    match e {
        FileError::Malformed { line: Some(l), .. } => *l,
        other => panic!("expected a malformed-file error with a line, got {other:?}"),
    }
}

#[test]
fn pos_sales_lines_fixture_parses_into_one_record_per_row() {
    let (_root, drop) = setup(&csv_config(",", true));
    let src = fs::read(data("pos/store_sales_lines.csv")).unwrap();
    let path = put(&drop, "store_sales_lines_20250315.csv", &src);

    let records = drop.read(&path).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(
        records.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 7]
    );
    for r in &records {
        let obj = r.value.as_object().unwrap();
        assert_eq!(obj.len(), 24, "line {}", r.line);
        assert!(obj.values().all(Value::is_string), "line {}", r.line);
    }
    assert_eq!(
        records[0].value["transaction_id"],
        "S014-R01-20250315-000118"
    );
    assert_eq!(records[0].value["unit_price"], "89.00");
    assert_eq!(records[0].value["original_transaction_id"], "");
    let ret = &records[3].value;
    assert_eq!(ret["transaction_type"], "RETURN");
    assert_eq!(ret["qty"], "-1");
    assert_eq!(ret["original_transaction_id"], "S014-R01-20250308-000077");
    assert_eq!(records[4].value["status"], "VOIDED");

    // The quoting edge case (`""` inside a quoted field, a comma in the description) gives
    // exactly the message the pipeline's tests use.
    let expected: Value = serde_json::from_slice(
        &fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/pos/sales_line.quoted_sku.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(records[5].value, expected);
    assert_eq!(records[5].value["sku"], "HAT-WL-\"TRAIL\"");
    assert_eq!(records[5].value["description"], "Wool Hat \"Trail\", Olive");
}

#[test]
fn pos_tenders_fixture_keeps_split_tenders_and_empty_fields() {
    let (_root, drop) = setup(&config(FileFormat::Csv));
    let src = fs::read(data("pos/store_sales_tenders.csv")).unwrap();
    let path = put(&drop, "store_sales_tenders.csv", &src);

    let records = drop.read(&path).unwrap();
    assert_eq!(records.len(), 5);
    let split: Vec<&Value> = records
        .iter()
        .map(|r| &r.value)
        .filter(|v| v["transaction_id"] == "S014-R02-20250315-000042")
        .collect();
    assert_eq!(split.len(), 2);
    assert_eq!(split[0]["tender_type"], "GIFT_CARD");
    assert_eq!(split[0]["card_brand"], "");
    assert_eq!(split[1]["tender_type"], "CASH");
    assert_eq!(split[1]["change_given"], "6.80");
    assert_eq!(records[3].value["tender_amount"], "-89.00");
}

#[test]
fn eu_export_with_bom_crlf_and_semicolons() {
    let (_root, drop) = setup(&csv_config(";", true));
    let src = "\u{FEFF}store_id;description;unit_price;line_total\r\n\
               S101;Pullover \"Nord\", Gr. M;89,00;89,00\r\n\
               S101;\"Socken; 3er\";12,50;-0,00\r\n";
    let path = put(&drop, "export_eu.csv", src.as_bytes());

    let records = drop.read(&path).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].value,
        json!({
            "store_id": "S101",
            "description": "Pullover \"Nord\", Gr. M",
            "unit_price": "89,00",
            "line_total": "89,00"
        })
    );
    // The BOM is not part of the first column's name; CR is not part of the last field.
    assert!(records[0].value.get("store_id").is_some());
    assert_eq!(records[1].value["description"], "Socken; 3er");
    assert_eq!(records[1].value["line_total"], "-0,00");
    assert_eq!(records[1].line, 3);
}

#[test]
fn quoted_field_with_delimiter_and_newline_keeps_later_line_numbers() {
    let (_root, drop) = setup(&csv_config(";", true));
    let src = "sku;note;qty\r\n\
               A1;\"gift wrap; ribbon\r\nwrite: \"\"Happy birthday\"\"\";1\r\n\
               A2;plain;2\r\n\
               A3;\"\";3\r\n";
    let path = put(&drop, "notes.csv", src.as_bytes());

    let records = drop.read(&path).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].line, 2);
    assert_eq!(
        records[0].value["note"],
        "gift wrap; ribbon\r\nwrite: \"Happy birthday\""
    );
    assert_eq!(records[0].value["qty"], "1");
    assert_eq!(records[1].line, 4, "the row after a two-line field");
    assert_eq!(records[1].value["sku"], "A2");
    assert_eq!(records[2].line, 5);
    assert_eq!(records[2].value["note"], "");
}

#[test]
fn a_row_with_the_wrong_number_of_fields_names_its_line() {
    let (_root, drop) = setup(&config(FileFormat::Csv));
    let src = "sku,note,qty\n\
               A1,\"two\nlines\",1\n\
               A2,ok,2\n\
               A3,missing qty\n\
               A4,ok,4\n";
    let path = put(&drop, "short_row.csv", src.as_bytes());

    let err = drop.read(&path).unwrap_err();
    assert_eq!(malformed_line(&err), 5);
    let msg = err.to_string();
    assert!(msg.contains("line 5"), "{msg}");
    assert!(msg.contains("2 fields"), "{msg}");
    assert!(msg.contains("has 3"), "{msg}");

    // The same file exported on Windows, with a BOM.
    let crlf = format!("\u{FEFF}{}", src.replace('\n', "\r\n"));
    let path = put(&drop, "short_row_crlf.csv", crlf.as_bytes());
    assert_eq!(malformed_line(&drop.read(&path).unwrap_err()), 5);
}

#[test]
fn a_csv_file_that_is_not_utf8_names_its_line() {
    let (_root, drop) = setup(&config(FileFormat::Csv));
    let mut src = b"sku,description\nA1,Pullover\nA2,Gr\xF6\xDFe M\n".to_vec();
    src.extend_from_slice(b"A3,ok\n");
    let path = put(&drop, "latin1.csv", &src);

    let err = drop.read(&path).unwrap_err();
    assert_eq!(malformed_line(&err), 3);
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn csv_without_header_gives_arrays_of_strings() {
    let (_root, drop) = setup(&csv_config(",", false));
    let path = put(&drop, "raw.csv", b"S014,R01,1\nS027,R02,2\n");

    let records = drop.read(&path).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].line, 1);
    assert_eq!(records[1].value, json!(["S027", "R02", "2"]));
}

#[test]
fn a_header_naming_a_column_twice_is_an_error() {
    let (_root, drop) = setup(&config(FileFormat::Csv));
    let path = put(&drop, "dup.csv", b"sku,qty,sku\nA,1,B\n");

    let err = drop.read(&path).unwrap_err();
    assert_eq!(malformed_line(&err), 1);
    assert!(err.to_string().contains("`sku` twice"), "{err}");
}

#[test]
fn a_delimiter_that_is_not_one_ascii_character_is_reported_on_read() {
    let (_root, drop) = setup(&csv_config("§", true));
    let path = put(&drop, "x.csv", b"a\n1\n");

    let err = drop.read(&path).unwrap_err();
    assert!(matches!(err, FileError::Delimiter(_)), "{err:?}");
}

#[test]
fn jsonl_gives_one_record_per_non_empty_line() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let src = "\u{FEFF}{\"sku\":\"A1\",\"qty\":1}\r\n\r\n  \n{\"sku\":\"A2\",\"qty\":2}\r\n";
    let path = put(&drop, "stock.jsonl", src.as_bytes());

    let records = drop.read(&path).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].line, 1);
    assert_eq!(records[0].value, json!({"sku": "A1", "qty": 1}));
    assert_eq!(records[1].line, 4);
    assert_eq!(records[1].value["qty"], 2);
}

#[test]
fn jsonl_with_a_bad_line_names_it() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let src = "{\"sku\":\"A1\"}\n\n{\"sku\":\"A2\"}\n{\"sku\": \"A3\",}\n{\"sku\":\"A4\"}\n";
    let path = put(&drop, "bad.jsonl", src.as_bytes());

    let err = drop.read(&path).unwrap_err();
    assert_eq!(malformed_line(&err), 4);
    let msg = err.to_string();
    assert!(msg.contains("bad.jsonl"), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("invalid JSON"), "{msg}");
}

#[test]
fn json_is_one_record_and_a_syntax_error_names_its_line() {
    let (_root, drop) = setup(&config(FileFormat::Json));
    let good = put(&drop, "order.json", b"{\n  \"lines\": [1, 2, 3]\n}\n");
    let records = drop.read(&good).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, json!({"lines": [1, 2, 3]}));

    let bad = put(
        &drop,
        "broken.json",
        b"{\n  \"lines\": [1, 2, 3\n  \"x\": 1\n}\n",
    );
    let err = drop.read(&bad).unwrap_err();
    assert_eq!(malformed_line(&err), 3);
}

/// JSON records go through the one JSON intake: a duplicate key or an integer beyond 64 bits
/// makes the file malformed at its line (never a record with a guessed value), and a BOM at
/// the start of a JSON or JSON-lines file is dropped.
#[test]
fn json_records_are_exact_or_the_file_is_malformed_at_the_line() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let dup = put(
        &drop,
        "dup.jsonl",
        b"{\"sku\":\"A1\",\"qty\":1}\n{\"sku\":\"A2\",\"qty\":1,\"qty\":1000}\n",
    );
    let err = drop.read(&dup).unwrap_err();
    assert_eq!(malformed_line(&err), 2);
    assert!(err.to_string().contains("the key `qty` twice"), "{err}");

    let big = put(
        &drop,
        "big-id.jsonl",
        b"{\"id\":1}\n\n{\"id\":18446744073709551617}\n",
    );
    let err = drop.read(&big).unwrap_err();
    assert_eq!(malformed_line(&err), 3);
    assert!(
        err.to_string().contains("integer 18446744073709551617"),
        "{err}"
    );

    let bom = put(&drop, "bom.jsonl", b"\xEF\xBB\xBF{\"id\":1}\n{\"id\":2}\n");
    let records = drop.read(&bom).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].value, json!({"id": 1}));

    let (_root, drop) = setup(&config(FileFormat::Json));
    let dup = put(&drop, "dup.json", b"{\n  \"a\": 1,\n  \"a\": 2\n}\n");
    let err = drop.read(&dup).unwrap_err();
    assert_eq!(malformed_line(&err), 3);
    assert!(err.to_string().contains("the key `a` twice"), "{err}");
    let bom = put(&drop, "bom.json", b"\xEF\xBB\xBF[18446744073709551615]");
    assert_eq!(
        drop.read(&bom).unwrap()[0].value[0].as_u64(),
        Some(u64::MAX)
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let drop = drop.with_max_bytes(16);
    let path = put(&drop, "big.jsonl", b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    let err = drop.read(&path).unwrap_err();
    assert!(
        matches!(err, FileError::TooLarge { limit: 16, .. }),
        "{err:?}"
    );
}

#[test]
fn finish_moves_to_done_and_to_failed_with_the_reason() {
    let (root, drop) = setup(&config(FileFormat::Csv));
    assert_eq!(drop.done_dir(), root.path().join("inbox/done"));
    assert_eq!(drop.failed_dir(), root.path().join("inbox/failed"));

    let ok = put(&drop, "a.csv", b"x\n1\n");
    let moved = drop.finish(&ok, Ok(())).unwrap();
    assert_eq!(moved, root.path().join("inbox/done/a.csv"));
    assert!(!ok.exists());
    assert_eq!(fs::read(&moved).unwrap(), b"x\n1\n");

    let bad = put(&drop, "b.csv", b"x\n1,2\n");
    let reason = "line 2: 2 fields, but the header (line 1) has 1";
    let moved = drop.finish(&bad, Err(reason.to_string())).unwrap();
    assert_eq!(moved, root.path().join("inbox/failed/b.csv"));
    assert!(!bad.exists());
    assert_eq!(
        fs::read_to_string(root.path().join("inbox/failed/b.csv.reason")).unwrap(),
        format!("{reason}\n")
    );
    // Nothing of b went to done/.
    assert!(!root.path().join("inbox/done/b.csv").exists());
}

#[test]
fn finish_never_overwrites_a_file_of_the_same_name() {
    let (root, drop) = setup(&config(FileFormat::Csv));
    let done = root.path().join("inbox/done");

    for (i, content) in ["first", "second", "third"].iter().enumerate() {
        let p = put(&drop, "sales.csv", content.as_bytes());
        let moved = drop.finish(&p, Ok(())).unwrap();
        let expected = match i {
            0 => done.join("sales.csv"),
            n => done.join(format!("sales-{n}.csv")),
        };
        assert_eq!(moved, expected);
    }
    assert_eq!(fs::read_to_string(done.join("sales.csv")).unwrap(), "first");
    assert_eq!(
        fs::read_to_string(done.join("sales-1.csv")).unwrap(),
        "second"
    );
    assert_eq!(
        fs::read_to_string(done.join("sales-2.csv")).unwrap(),
        "third"
    );

    // In failed/ too, and the reason file follows the new name.
    for _ in 0..2 {
        let p = put(&drop, "noext", b"?");
        drop.finish(&p, Err("bad".to_string())).unwrap();
    }
    let failed = root.path().join("inbox/failed");
    assert!(failed.join("noext").exists());
    assert!(failed.join("noext-1").exists());
    assert_eq!(
        fs::read_to_string(failed.join("noext-1.reason")).unwrap(),
        "bad\n"
    );

    // A file that is gone is an error, not a silent success.
    assert!(drop.finish(&drop.dir().join("gone.csv"), Ok(())).is_err());
}

#[test]
fn configured_done_and_failed_dirs_are_relative_to_the_project_root() {
    let cfg = FileInput {
        done_dir: Some("archive/pos".to_string()),
        failed_dir: Some("rejected".to_string()),
        ..config(FileFormat::Csv)
    };
    let (root, drop) = setup(&cfg);
    let p = put(&drop, "a.csv", b"x\n1\n");
    assert_eq!(
        drop.finish(&p, Ok(())).unwrap(),
        root.path().join("archive/pos/a.csv")
    );
    let p = put(&drop, "b.csv", b"x\n1\n");
    assert_eq!(
        drop.finish(&p, Err("no".into())).unwrap(),
        root.path().join("rejected/b.csv")
    );
}

fn age(path: &Path, modified: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

#[test]
fn poll_skips_files_still_being_written_and_lists_the_oldest_first() {
    let cfg = FileInput {
        pattern: Some("store_sales_lines*.csv".to_string()),
        ..config(FileFormat::Csv)
    };
    let (_root, drop) = setup(&cfg);
    let now = SystemTime::now();
    let newer = put(&drop, "store_sales_lines_b.csv", b"x\n");
    let older = put(&drop, "store_sales_lines_c.csv", b"x\n");
    age(&newer, now - Duration::from_secs(60));
    age(&older, now - Duration::from_secs(3600));
    let fresh = put(&drop, "store_sales_lines_a.csv", b"x\n");
    age(&fresh, now);
    // Never candidates: another pattern, a dotfile, a partial upload, a directory.
    for name in [
        "store_sales_tenders.csv",
        ".store_sales_lines_d.csv",
        "store_sales_lines_e.csv.filepart",
    ] {
        let p = put(&drop, name, b"x\n");
        age(&p, now - Duration::from_secs(7200));
    }
    fs::create_dir(drop.dir().join("store_sales_lines_dir.csv")).unwrap();

    assert_eq!(drop.poll(now), vec![older.clone(), newer.clone()]);
    // Half a second later the fresh file is still settling; after a second it is in.
    assert_eq!(drop.poll(now + Duration::from_millis(500)).len(), 2);
    assert_eq!(
        drop.poll(now + Duration::from_secs(2)),
        vec![older, newer, fresh]
    );
}

#[test]
fn poll_of_a_missing_directory_is_empty_and_try_poll_says_why() {
    let root = tempfile::tempdir().unwrap();
    let drop = FileDrop::new(&config(FileFormat::Csv), root.path());
    assert!(drop.poll(SystemTime::now()).is_empty());
    let err = drop.try_poll(SystemTime::now()).unwrap_err();
    assert!(err.to_string().contains("inbox"), "{err}");
}

#[test]
fn duplicate_content_has_the_same_file_key() {
    let (_root, drop) = setup(&csv_config(",", true));
    let src = fs::read(data("pos/store_sales_lines.csv")).unwrap();
    let first = put(&drop, "store_sales_lines_0315.csv", &src);
    let resent = put(&drop, "store_sales_lines_0315_resend.csv", &src);
    let mut changed = src.clone();
    changed.extend_from_slice(b"\n");
    let other = put(&drop, "store_sales_lines_0316.csv", &changed);

    let k1 = file_key(&first).unwrap();
    assert_eq!(k1.len(), 64);
    assert!(k1.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(k1, file_key(&resent).unwrap());
    assert_ne!(k1, file_key(&other).unwrap());
    assert_eq!(k1, content_key(&src));

    let (key, records) = drop.read_keyed(&first).unwrap();
    assert_eq!(key, k1);
    assert_eq!(records, drop.read(&resent).unwrap());

    // SHA-256 itself, not some other digest.
    let abc = put(&drop, "abc", b"abc");
    assert_eq!(
        file_key(&abc).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

// ---------------------------------------------------------------------------------------------
// When a file is complete: a writer that pauses longer than the settle time.

#[test]
fn a_file_cut_off_mid_line_waits_and_is_taken_when_complete() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let now = SystemTime::now();
    let p = put(&drop, "sales.jsonl", b"{\"n\": 1}\n{\"n\": 2}\n{\"n\": ");
    age(&p, now - Duration::from_secs(2));
    let e = drop.read_checked(&p, now).unwrap_err();
    assert!(matches!(e, FileError::Incomplete { .. }), "{e:?}");
    assert!(e.is_not_ready());
    // The writer finishes the line: now it is taken whole.
    fs::write(&p, b"{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n").unwrap();
    age(&p, now - Duration::from_secs(2));
    let read = drop.read_checked(&p, now).unwrap();
    assert_eq!(read.records.len(), 3);
}

#[test]
fn a_file_cut_off_at_a_line_break_is_taken_and_then_not_moved_when_it_grew() {
    let (_root, drop) = setup(&config(FileFormat::Csv));
    let now = SystemTime::now();
    let p = put(&drop, "lines.csv", b"sku,qty\nA,1\n");
    age(&p, now - Duration::from_secs(2));
    let read = drop.read_checked(&p, now).unwrap();
    assert_eq!(read.records.len(), 1);
    // The writer resumes after its pause, after the records were handed off.
    fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"B,2\n")
        .unwrap();
    let e = drop
        .finish_checked(&p, &read.snapshot, Ok(()), now)
        .unwrap_err();
    assert!(matches!(e, FileError::Changing { .. }), "{e:?}");
    assert!(p.exists(), "left in place");
    assert!(!drop.done_dir().join("lines.csv").exists());
    // The next poll reads it whole; unchanged since, it is moved.
    let again = drop.read_checked(&p, SystemTime::now() + GRACE).unwrap();
    assert_eq!(again.records.len(), 2);
    assert_ne!(again.key, read.key, "new content, new key");
    let moved = drop
        .finish_checked(&p, &again.snapshot, Ok(()), now)
        .unwrap();
    assert_eq!(moved, drop.done_dir().join("lines.csv"));
}

#[test]
fn a_file_without_a_final_line_break_is_taken_after_the_grace_period() {
    let (_root, drop) = setup(&config(FileFormat::Csv));
    let now = SystemTime::now();
    let p = put(&drop, "lines.csv", b"sku,qty\nA,1\nB,2");
    age(&p, now - Duration::from_secs(2));
    assert!(drop.read_checked(&p, now).unwrap_err().is_not_ready());
    age(&p, now - GRACE);
    assert_eq!(drop.read_checked(&p, now).unwrap().records.len(), 2);
}

#[test]
fn a_malformed_file_is_only_malformed_after_the_grace_period() {
    let (_root, drop) = setup(&config(FileFormat::Json));
    let now = SystemTime::now();
    let p = put(&drop, "order.json", b"{\"order\": [1, 2");
    age(&p, now - Duration::from_secs(2));
    assert!(drop.read_checked(&p, now).unwrap_err().is_not_ready());
    age(&p, now - GRACE - Duration::from_secs(1));
    let e = drop.read_checked(&p, now).unwrap_err();
    assert!(matches!(e, FileError::Malformed { .. }), "{e:?}");
}

#[test]
fn a_file_from_the_future_is_taken_once_it_stays_unchanged() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let now = SystemTime::now();
    let p = put(&drop, "skewed.jsonl", b"{\"n\": 1}\n");
    age(&p, now + Duration::from_secs(3600));
    assert!(drop.poll(now).is_empty(), "first seen now");
    assert!(drop.poll(now + Duration::from_millis(500)).is_empty());
    assert_eq!(
        drop.poll(now + SETTLE),
        vec![p.clone()],
        "unchanged for the settle time"
    );
    // A change starts the wait again.
    fs::write(&p, b"{\"n\": 1}\n{\"n\": 2}\n").unwrap();
    age(&p, now + Duration::from_secs(3601));
    assert!(drop.poll(now + SETTLE * 2).is_empty());
    assert_eq!(drop.poll(now + SETTLE * 3), vec![p]);
}

#[test]
fn a_file_its_writer_appends_to_after_it_was_moved_to_done_is_moved_back() {
    let (_root, drop) = setup(&config(FileFormat::Jsonl));
    let now = SystemTime::now();
    let p = put(&drop, "sales.jsonl", b"{\"n\": 1}\n");
    age(&p, now - Duration::from_secs(2));
    let read = drop.read_checked(&p, now).unwrap();
    let moved = drop
        .finish_checked(&p, &read.snapshot, Ok(()), now)
        .unwrap();
    assert!(!p.exists());
    // The writer had only paused: it appends to the file it has open, now in done/.
    fs::OpenOptions::new()
        .append(true)
        .open(&moved)
        .unwrap()
        .write_all(b"{\"n\": 2}\n")
        .unwrap();
    age(&moved, now - Duration::from_secs(2));
    assert_eq!(
        drop.poll(now),
        vec![p.clone()],
        "moved back and offered again"
    );
    assert!(!moved.exists());
    assert_eq!(drop.read_checked(&p, now).unwrap().records.len(), 2);
    // Past the grace period a finished file is no longer watched.
    let read = drop.read_checked(&p, now).unwrap();
    let moved = drop
        .finish_checked(&p, &read.snapshot, Ok(()), now)
        .unwrap();
    drop.poll(now + GRACE);
    fs::write(&moved, b"changed later\n").unwrap();
    drop.poll(now + GRACE * 2);
    assert!(moved.exists());
}
