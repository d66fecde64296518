//! Classic BPF programs from arbitrary bytes: read as text (the first byte
//! even) or as raw instructions followed by a frame (odd). Any program the
//! checks take must run to a return on the frame without panicking, give
//! the same verdict twice, and read back the same from the text
//! `tcpdump -ddd` prints.

use weft_capture::bpf::{BpfProgram, Insn};

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (program, frame) = if mode & 1 == 0 {
        let Ok(p) = BpfProgram::parse(&String::from_utf8_lossy(rest)) else {
            return;
        };
        (p, &[0x45u8; 60][..])
    } else {
        // Instructions (8 bytes each, as many as the next byte says),
        // then the frame.
        let Some((&n, rest)) = rest.split_first() else {
            return;
        };
        let n = usize::from(n).min(rest.len() / 8);
        let insns = rest[..n * 8]
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let Ok(p) = BpfProgram::new(insns) else {
            return;
        };
        (p, &rest[n * 8..])
    };
    let wire_len = frame.len() as u32 + u32::from(mode >> 4);
    let verdict = program.run(frame, wire_len);
    assert_eq!(
        program.run(frame, wire_len),
        verdict,
        "the same frame twice"
    );
    let _ = program.check_offline();
    let insns = program.instructions();
    let text: String = std::iter::once(format!("{}\n", insns.len()))
        .chain(
            insns
                .iter()
                .map(|i| format!("{} {} {} {}\n", i.code, i.jt, i.jf, i.k)),
        )
        .collect();
    assert_eq!(BpfProgram::parse(&text).as_ref(), Ok(&program), "-ddd text");
}
