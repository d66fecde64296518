//! The BPF interpreter against libpcap's: for each capture (the repo's
//! sample and the corpus's) and each filter expression of [`EXPRESSIONS`],
//! `data/bpf_oracle.tsv` holds the program tcpdump compiled for the
//! capture's link type (each program once, numbered, rows naming it) and
//! the frames libpcap's own interpreter accepted
//! (`tcpdump -r CAPTURE -w - EXPRESSION`); `BpfProgram::run` must accept
//! exactly those. The table is made by the ignored test `regenerate`
//! (needs tcpdump: `cargo test -p weft-capture --test bpf_oracle --
//! --ignored`); this test needs only the table, and the corpus for its
//! rows (skipped, visibly, without it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use weft_capture::{BpfProgram, Capture};

/// Each exercises a part of the machine: loads of every size, indexed
/// loads past an IPv4 header's length, every ALU operation (the payload
/// length one keeps words in scratch memory), the packet's length, every
/// jump.
const EXPRESSIONS: &[&str] = &[
    "tcp",
    "not tcp",
    "tcp port 80",
    "ip6 and tcp",
    "vlan and tcp",
    "mpls and tcp",
    "udp",
    "ip[6:2] & 0x3fff != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0",
    "tcp and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
    "greater 600",
    "less 80",
    "len - 54 > 100",
    "net 10.0.0.0/8 or net 192.168.0.0/16",
    "tcp portrange 1000-2000",
    "ip[8] < 64",
    "ether[0] & 1 != 0",
    "tcp[0:4] % 7 == 3",
    "tcp and tcp[4:4] * 3 > 0x80000000",
    "ip[2:2] / 100 == 5",
    "tcp[12:2] ^ 0x5010 == 0",
    "ip6 and ip6[6] == 6",
];

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bpf_oracle.tsv");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/sample.pcap");

/// A frame's captured bytes and length on the wire.
type Frame = (Vec<u8>, u32);

/// Each frame of a capture, up to damage if any (as far as libpcap reads
/// too).
fn frames(path: &Path) -> Vec<Frame> {
    let mut cap = Capture::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (frames, _) = common::drain(&mut cap);
    frames.into_iter().map(|f| (f.data, f.wire_len)).collect()
}

/// Frame numbers (from 1) as ranges, `1-3,7`; `-` for none.
fn ranges(numbers: impl IntoIterator<Item = usize>) -> String {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for n in numbers {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => out.push((n, n)),
        }
    }
    if out.is_empty() {
        return "-".to_owned();
    }
    out.iter()
        .map(|&(s, e)| {
            if s == e {
                s.to_string()
            } else {
                format!("{s}-{e}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The captures of the table: the sample, and the corpus's if at hand.
fn captures(corpus: Option<&Path>) -> Vec<PathBuf> {
    let mut all = vec![PathBuf::from(SAMPLE)];
    if let Some(dir) = corpus {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        found.sort();
        all.extend(found);
    }
    all
}

#[test]
fn the_interpreter_accepts_what_libpcaps_accepts() {
    let corpus = common::corpus_dir();
    let paths = captures(corpus.as_deref());
    let table = std::fs::read_to_string(TABLE).unwrap();
    let (mut rows, mut wrong) = (0, Vec::new());
    let mut seen = std::collections::HashSet::new();
    let mut loaded: Option<(String, Vec<Frame>)> = None;
    let mut programs = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        if let Some(text) = line.strip_prefix("program\t") {
            programs.push(text);
            continue;
        }
        let [name, expr, program, want]: [&str; 4] =
            line.split('\t').collect::<Vec<_>>().try_into().unwrap();
        let program = programs[program.parse::<usize>().unwrap()];
        let Some(path) = paths.iter().find(|p| p.file_name().unwrap() == name) else {
            // A corpus capture, and no corpus.
            assert!(corpus.is_none(), "{name} is not in the corpus");
            continue;
        };
        seen.insert(name);
        if loaded.as_ref().map(|(n, _)| n.as_str()) != Some(name) {
            loaded = Some((name.to_owned(), frames(path)));
        }
        let fr = &loaded.as_ref().unwrap().1;
        let p = BpfProgram::parse(program).unwrap_or_else(|e| panic!("{name} {expr:?}: {e}"));
        p.check_offline().unwrap();
        let got = ranges((1..=fr.len()).filter(|&i| p.run(&fr[i - 1].0, fr[i - 1].1) != 0));
        rows += 1;
        if got != want {
            wrong.push(format!("{name} {expr:?}: libpcap {want}, weft {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {rows} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(seen.contains("sample.pcap"));
    if corpus.is_some() {
        // Every capture of the corpus but those tcpdump cannot filter.
        assert!(seen.len() >= 70, "{} captures in the table", seen.len());
    }
    // Without the corpus, the sample's: every expression compiles for it.
    let least = if corpus.is_some() {
        EXPRESSIONS.len() * 10
    } else {
        EXPRESSIONS.len()
    };
    assert!(rows >= least, "{rows} rows");
}

/// Remakes the table with tcpdump (see the module's docs).
#[test]
#[ignore = "needs tcpdump; remakes tests/data/bpf_oracle.tsv"]
fn regenerate() {
    let corpus = common::corpus_dir();
    let tmp = std::env::temp_dir().join(format!("weft-bpf-oracle-{}.pcap", std::process::id()));
    let mut rows =
        String::from("# capture\texpression\tprogram (its number)\tframes accepted (tcpdump -r)\n");
    let mut programs: Vec<String> = Vec::new();
    for path in captures(corpus.as_deref()) {
        let all = frames(&path);
        for expr in EXPRESSIONS {
            let compiled = Command::new("tcpdump")
                .arg("-r")
                .arg(&path)
                .args(["-ddd", expr])
                .output()
                .expect("running tcpdump");
            if !compiled.status.success() {
                continue; // not for this link type
            }
            let program = String::from_utf8(compiled.stdout).unwrap();
            let filtered = Command::new("tcpdump")
                .arg("-r")
                .arg(&path)
                .arg("-w")
                .arg(&tmp)
                .arg(expr)
                .output()
                .expect("running tcpdump");
            let said = String::from_utf8_lossy(&filtered.stderr);
            if said.contains("different from the type") {
                continue; // interfaces of two link types
            }
            // Else a failure is damage, which ends both readers alike.
            // The frames taken, in order: each the next one of the
            // capture's alike in bytes and length (frames alike are judged
            // alike, so the first such is the one).
            let taken = frames(&tmp);
            let mut next = taken.iter().peekable();
            let accepted: Vec<usize> = (1..=all.len())
                .filter(|&i| {
                    let hit = next.peek() == Some(&&all[i - 1]);
                    if hit {
                        next.next();
                    }
                    hit
                })
                .collect();
            assert!(
                next.next().is_none(),
                "{}: unmatched frames",
                path.display()
            );
            let name = path.file_name().unwrap().to_string_lossy();
            let program = program.trim().replace('\n', ",");
            let id = programs
                .iter()
                .position(|p| *p == program)
                .unwrap_or_else(|| {
                    programs.push(program);
                    programs.len() - 1
                });
            rows += &format!("{name}\t{expr}\t{id}\t{}\n", ranges(accepted));
        }
    }
    let _ = std::fs::remove_file(&tmp);
    let mut out =
        String::from("# program\ttcpdump -ddd's lines, joined by commas; numbered from 0\n");
    for p in &programs {
        out += &format!("program\t{p}\n");
    }
    std::fs::write(TABLE, out + &rows).unwrap();
}
