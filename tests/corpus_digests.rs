//! Every capture of the shared corpus is reassembled inline and its
//! per-direction digests are compared with the reference digests: tshark's,
//! except where `tests/corpus/expected.tsv` names another reference and says
//! why weft is right there.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use weft_engine::PipelineConfig;
use weft_replay::digest::Line;

/// Lines `SRC SPORT DST DPORT BYTES SHA` (GAPBYTES dropped) as a multiset.
fn multiset(lines: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let key = match f.len() {
            6 => f.join(" "),
            7 => format!("{} {} {} {} {} {}", f[0], f[1], f[2], f[3], f[4], f[6]),
            0 => continue,
            n => panic!("digest line with {n} fields: {l}"),
        };
        *m.entry(key).or_default() += 1;
    }
    m
}

fn read_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn expected() -> HashMap<String, String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/expected.tsv");
    read_lines(&p)
        .into_iter()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (file, reference) = (f.next().unwrap(), f.next().expect("reference column"));
            assert!(
                f.next().is_some_and(|why| why.len() > 20),
                "{file}: say why"
            );
            (file.to_owned(), reference.to_owned())
        })
        .collect()
}

fn diff(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> String {
    let mut s = String::new();
    for (k, n) in a {
        if b.get(k) != Some(n) {
            s += &format!("  weft only: {k}\n");
        }
    }
    for (k, n) in b {
        if a.get(k) != Some(n) {
            s += &format!("  reference only: {k}\n");
        }
    }
    s
}

#[test]
fn corpus_digests_match_references() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let exp = expected();
    let mut failures = Vec::new();
    let files = common::corpus_captures(&dir);
    assert!(
        files.len() >= 80,
        "corpus looks incomplete: {} captures",
        files.len()
    );
    for f in &files {
        let (digests, _, stats, err) =
            weft_replay::digest_file(&dir.join(f), PipelineConfig::default()).expect("opens");
        assert!(stats.balanced(), "{f}: accounting {stats:?}");
        if let Some(e) = &err {
            // Only the capture with a damaged tail may end early.
            assert!(f.starts_with("pgsql-5000"), "{f}: {e}");
        }
        let ours = multiset(digests.iter().map(|d| d.line()));
        let reference = match exp.get(f).map(String::as_str) {
            None => dir.join(format!("{f}.tshark.digest")),
            Some("naive") => dir.join(format!("{f}.naive.digest")),
            Some("weft") => {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/corpus/{f}.weft.digest"))
            }
            Some(other) => panic!("{f}: unknown reference {other}"),
        };
        let want = multiset(read_lines(&reference));
        if ours != want {
            failures.push(format!(
                "{f} vs {}:\n{}",
                reference.display(),
                diff(&ours, &want)
            ));
        }
    }
    for name in exp.keys() {
        assert!(
            files.contains(name),
            "expected.tsv names a missing capture {name}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} captures differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!(
        "corpus: {} captures, {} with a documented difference from tshark",
        files.len(),
        exp.len()
    );
}
