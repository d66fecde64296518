//! Classic BPF packet filters: the programs `tcpdump -d` shows, read from
//! the text `tcpdump -ddd` or `-dd` prints, checked by the kernel's rules,
//! and run either by the kernel on a live capture's socket
//! ([`LiveOptions::filter`](crate::LiveOptions::filter)) or here, on
//! frames read from files ([`BpfProgram::run`]).
//!
//! weft compiles no filter expressions (that takes libpcap, a C library):
//! `tcpdump -ddd 'tcp port 80'` compiles one for Ethernet frames, `-y
//! TYPE` for another link type, and `-i IFACE` for a live interface,
//! whose programs may use the kernel's extensions (libpcap's `vlan`, for
//! one, asks the kernel for a tag it took out of the frame).
//!
//! The interpreter is written here: no well-kept crate runs classic BPF,
//! and the machine is small (a few dozen instructions, no loops; every
//! program ends, as jumps only go forward). It runs a program as
//! libpcap's interpreter runs it on a capture file (`tcpdump -r`): a load
//! past the frame's captured bytes, or a division by a zero `X`, rejects
//! the frame; `len` is the frame's length on the wire; an indexed load's
//! offset `X + k` is unsigned, and a shift by an `X` of 32 or more gives
//! 0. (The kernel reads `X + k` as signed and shifts by `X`'s low five
//! bits; tcpdump's programs do neither.) A frame read from a file carries
//! its VLAN tags, so the kernel's VLAN extensions read 0 (no tag taken
//! out), and libpcap's live `vlan` programs go on to read the tag in the
//! frame; `SKF_AD_ALU_XOR_X` is `A ^ X`. Other extensions, and loads
//! relative to the headers the kernel marks (`SKF_NET_OFF`,
//! `SKF_LL_OFF`), are the kernel's alone
//! ([`check_offline`](BpfProgram::check_offline)).
//!
//! ```
//! use weft_capture::BpfProgram;
//!
//! // `tcpdump -ddd 'ip and tcp'`: an Ethernet frame's type, then the
//! // IPv4 protocol.
//! let text = "6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 6\n6 0 0 262144\n6 0 0 0\n";
//! let program = BpfProgram::parse(text)?;
//! program.check_offline()?; // no kernel extension: it runs on files too
//! let mut frame = [0u8; 54];
//! frame[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4
//! frame[14] = 0x45;
//! frame[23] = 6; // TCP
//! assert_eq!(program.run(&frame, 54), 262_144); // taken: keep it all
//! frame[23] = 17; // UDP
//! assert_eq!(program.run(&frame, 54), 0); // rejected
//! # Ok::<(), weft_capture::bpf::BpfError>(())
//! ```

use std::fmt;

/// The most instructions a program may have (the kernel's `BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Where the kernel's extensions start among load offsets (`SKF_AD_OFF`,
/// -4096 as an unsigned 32-bit offset).
const AD_OFF: u32 = 0xffff_f000;
/// `SKF_AD_VLAN_TAG`: the tag the kernel took out of the frame.
const AD_VLAN_TAG: u32 = AD_OFF + 44;
/// `SKF_AD_VLAN_TAG_PRESENT`: whether it took one out.
const AD_VLAN_TAG_PRESENT: u32 = AD_OFF + 48;
/// `SKF_AD_ALU_XOR_X`: `A ^ X`, a load that reads no packet.
const AD_ALU_XOR_X: u32 = AD_OFF + 40;
/// `SKF_AD_MAX`: the kernel knows the extensions below it, every fourth
/// offset from [`AD_OFF`] (from `SKF_AD_PROTOCOL` to `SKF_AD_VLAN_TPID`).
const AD_MAX: u32 = 64;
/// `SKF_LL_OFF`: from here up to [`AD_OFF`], loads the kernel makes
/// relative to the link-layer header (`SKF_LL_OFF`, -2 MiB) or the network
/// header (`SKF_NET_OFF`, -1 MiB), which a file's frame does not mark.
const LL_OFF: u32 = 0xffe0_0000;

/// One instruction, as `struct sock_filter` holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// The operation (class, size, mode or operator, source).
    pub code: u16,
    /// Where a conditional jump goes if true: that many instructions on.
    pub jt: u8,
    /// ... and if false.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

/// What makes a program unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfError(String);

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BpfError {}

fn bad(at: usize, what: &str) -> BpfError {
    BpfError(format!("BPF instruction {at}: {what}"))
}

/// A checked classic BPF program.
///
/// `Send` and `Sync`; [`run`](Self::run) takes `&self`, so threads can
/// share one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProgram {
    insns: Vec<Insn>,
    /// The instructions as [`run`](Self::run) takes them.
    steps: Vec<Step>,
    /// The first load of an extension [`run`](Self::run) cannot give.
    kernel_only: Option<usize>,
}

impl BpfProgram {
    /// Checks `insns` by the kernel's rules for attaching a program
    /// (`bpf_check_classic`): 1 to [`MAX_INSTRUCTIONS`] of them, each a
    /// known operation (an extension the kernel knows, for loads past
    /// `SKF_AD_OFF`), jumps landing inside the program, no division by a
    /// constant zero, no shift by a constant of 32 or more, scratch memory
    /// read only where the kernel's one pass finds it written, and a
    /// return last. (A kernel may still refuse a long program for want of
    /// socket memory, `optmem_max`.)
    pub fn new(insns: Vec<Insn>) -> Result<BpfProgram, BpfError> {
        if insns.is_empty() || insns.len() > MAX_INSTRUCTIONS {
            return Err(BpfError(format!(
                "a BPF program has 1 to {MAX_INSTRUCTIONS} instructions, not {}",
                insns.len()
            )));
        }
        let n = insns.len();
        let mut kernel_only = None;
        let mut steps = Vec::with_capacity(n);
        for (at, i) in insns.iter().enumerate() {
            let exec = decode(i).ok_or_else(|| {
                if i.code & 0x07 == LD && i.code & 0xe0 == ABS && i.k >= AD_OFF {
                    bad(at, &format!("unknown kernel extension {}", i.k - AD_OFF))
                } else {
                    bad(at, &format!("unknown code {:#x}", i.code))
                }
            })?;
            let left = n - at - 1;
            match exec {
                Exec::DivK | Exec::ModK if i.k == 0 => return Err(bad(at, "division by zero")),
                Exec::LshK | Exec::RshK if i.k >= 32 => return Err(bad(at, "shift by 32 or more")),
                Exec::LdMem | Exec::LdxMem | Exec::St | Exec::Stx if i.k >= 16 => {
                    return Err(bad(at, "scratch memory has 16 words"))
                }
                Exec::Ja if i.k as usize >= left => return Err(bad(at, "jump out of the program")),
                _ if exec.is_conditional() && usize::from(i.jt.max(i.jf)) >= left => {
                    return Err(bad(at, "jump out of the program"))
                }
                Exec::Kernel if kernel_only.is_none() => kernel_only = Some(at),
                _ => {}
            }
            steps.push(Step {
                exec,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            });
        }
        if !matches!(steps[n - 1].exec, Exec::RetK | Exec::RetA) {
            return Err(bad(n - 1, "a program ends with a return"));
        }
        check_memory(&steps)?;
        Ok(BpfProgram {
            insns,
            steps,
            kernel_only,
        })
    }

    /// Reads a program from the text `tcpdump -ddd` prints (the count of
    /// instructions, then each as four decimal numbers: `code jt jf k`),
    /// the same numbers separated by commas (iptables' `--bytecode`), or
    /// what `tcpdump -dd` prints (C initializers, `{ 0x28, 0, 0,
    /// 0x0000000c },`). Lines starting with `#` are comments. Then checks
    /// it ([`new`](Self::new)).
    pub fn parse(text: &str) -> Result<BpfProgram, BpfError> {
        let mut nums = Vec::new();
        let mut braces = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            braces |= line.contains('{');
            for tok in line
                .split(|c: char| c.is_whitespace() || matches!(c, ',' | '{' | '}'))
                .filter(|t| !t.is_empty())
            {
                let n = match tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => tok.parse::<u64>(),
                }
                .map_err(|_| BpfError(format!("BPF program text: {tok:?} is not a number")))?;
                nums.push(n);
            }
        }
        let body = if braces {
            &nums[..]
        } else {
            match nums.split_first() {
                Some((&count, rest)) if Some(count) == u64::try_from(rest.len() / 4).ok() => rest,
                Some((&count, rest)) => {
                    return Err(BpfError(format!(
                        "BPF program text: it says {count} instructions, and has {} numbers \
                         after that (four an instruction)",
                        rest.len()
                    )))
                }
                None => return Err(BpfError("BPF program text: no instructions".to_owned())),
            }
        };
        if body.len() % 4 != 0 {
            return Err(BpfError(format!(
                "BPF program text: {} numbers, not four an instruction",
                body.len()
            )));
        }
        let insns = body
            .chunks_exact(4)
            .enumerate()
            .map(|(at, f)| {
                let field = |v: u64, max: u64, name: &str| {
                    if v > max {
                        Err(bad(at, &format!("{name} {v} is out of range")))
                    } else {
                        Ok(v)
                    }
                };
                Ok(Insn {
                    code: field(f[0], u16::MAX.into(), "code")? as u16,
                    jt: field(f[1], u8::MAX.into(), "jt")? as u8,
                    jf: field(f[2], u8::MAX.into(), "jf")? as u8,
                    k: field(f[3], u32::MAX.into(), "k")? as u32,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        BpfProgram::new(insns)
    }

    /// The instructions.
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// Whether [`run`](Self::run) judges every frame as the kernel would:
    /// an error naming the first instruction that loads a kernel
    /// extension other than the VLAN tag's (packet type, interface,
    /// ...), which frames read from a file do not have.
    pub fn check_offline(&self) -> Result<(), BpfError> {
        let Some(at) = self.kernel_only else {
            return Ok(());
        };
        let k = self.insns[at].k;
        let what = if k >= AD_OFF {
            format!("loads kernel extension {}", k - AD_OFF)
        } else {
            format!("loads at {} from a header the kernel marks", k as i32)
        };
        Err(bad(at, &format!("{what}, which only a live capture has")))
    }

    /// Runs the program on `frame` (the bytes captured) of a packet
    /// `wire_len` bytes long on the wire: the number of bytes to keep, `0`
    /// to reject it (tcpdump's programs return the snap length they were
    /// compiled with, 262,144 by default, for a frame they take). Its
    /// VLAN tags are taken to be in it, as in any frame read from a file:
    /// the VLAN extensions read `0`. Loads the kernel alone can make (see
    /// [`check_offline`](Self::check_offline)) reject the frame.
    pub fn run(&self, frame: &[u8], wire_len: u32) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; 16];
        let mut pc = 0;
        // Checked by `new`: jumps land inside the program, memory indexes
        // are below 16, a return is last. A load past the frame's end
        // rejects it.
        loop {
            let Step { exec, jt, jf, k } = self.steps[pc];
            pc += 1;
            match exec {
                Exec::LdW => match word(frame, k as usize) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Exec::LdH => match half(frame, k as usize) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Exec::LdB => match frame.get(k as usize) {
                    Some(&v) => a = u32::from(v),
                    None => return 0,
                },
                Exec::LdWInd => match word(frame, indexed(x, k)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Exec::LdHInd => match half(frame, indexed(x, k)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Exec::LdBInd => match frame.get(indexed(x, k)) {
                    Some(&v) => a = u32::from(v),
                    None => return 0,
                },
                Exec::LdLen => a = wire_len,
                Exec::LdImm => a = k,
                Exec::LdMem => a = mem[k as usize & 15],
                Exec::LdxImm => x = k,
                Exec::LdxMem => x = mem[k as usize & 15],
                Exec::LdxLen => x = wire_len,
                Exec::LdxMsh => match frame.get(k as usize) {
                    Some(&b) => x = u32::from(b & 0xf) * 4,
                    None => return 0,
                },
                Exec::St => mem[k as usize & 15] = a,
                Exec::Stx => mem[k as usize & 15] = x,
                Exec::AddK => a = a.wrapping_add(k),
                Exec::AddX => a = a.wrapping_add(x),
                Exec::SubK => a = a.wrapping_sub(k),
                Exec::SubX => a = a.wrapping_sub(x),
                Exec::MulK => a = a.wrapping_mul(k),
                Exec::MulX => a = a.wrapping_mul(x),
                // `new` refused a constant zero.
                Exec::DivK => a = a.checked_div(k).unwrap_or(0),
                Exec::DivX => match a.checked_div(x) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Exec::ModK => a = a.checked_rem(k).unwrap_or(0),
                Exec::ModX => match a.checked_rem(x) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Exec::OrK => a |= k,
                Exec::OrX => a |= x,
                Exec::AndK => a &= k,
                Exec::AndX => a &= x,
                Exec::XorK => a ^= k,
                Exec::XorX => a ^= x,
                // `new` refused constants from 32; by X from 32, 0, as
                // libpcap's interpreter gives (the kernel shifts by X's low
                // five bits).
                Exec::LshK => a <<= k,
                Exec::RshK => a >>= k,
                Exec::LshX => a = a.checked_shl(x).unwrap_or(0),
                Exec::RshX => a = a.checked_shr(x).unwrap_or(0),
                Exec::Neg => a = a.wrapping_neg(),
                Exec::Ja => pc += k as usize,
                Exec::JeqK => pc += usize::from(if a == k { jt } else { jf }),
                Exec::JeqX => pc += usize::from(if a == x { jt } else { jf }),
                Exec::JgtK => pc += usize::from(if a > k { jt } else { jf }),
                Exec::JgtX => pc += usize::from(if a > x { jt } else { jf }),
                Exec::JgeK => pc += usize::from(if a >= k { jt } else { jf }),
                Exec::JgeX => pc += usize::from(if a >= x { jt } else { jf }),
                Exec::JsetK => pc += usize::from(if a & k != 0 { jt } else { jf }),
                Exec::JsetX => pc += usize::from(if a & x != 0 { jt } else { jf }),
                Exec::RetK => return k,
                Exec::RetA => return a,
                Exec::Tax => x = a,
                Exec::Txa => a = x,
                Exec::NoTag => a = 0,
                Exec::Kernel => return 0,
            }
        }
    }
}

/// An instruction as [`BpfProgram::run`] takes it: one flat operation to
/// branch on (the classes' decoding done once, by [`decode`]), 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Step {
    exec: Exec,
    jt: u8,
    jf: u8,
    k: u32,
}

/// Every operation `run` tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exec {
    LdW,
    LdH,
    LdB,
    LdWInd,
    LdHInd,
    LdBInd,
    LdLen,
    LdImm,
    LdMem,
    LdxImm,
    LdxMem,
    LdxLen,
    LdxMsh,
    St,
    Stx,
    AddK,
    AddX,
    SubK,
    SubX,
    MulK,
    MulX,
    DivK,
    DivX,
    ModK,
    ModX,
    OrK,
    OrX,
    AndK,
    AndX,
    XorK,
    XorX,
    LshK,
    LshX,
    RshK,
    RshX,
    Neg,
    Ja,
    JeqK,
    JeqX,
    JgtK,
    JgtX,
    JgeK,
    JgeX,
    JsetK,
    JsetX,
    RetK,
    RetA,
    Tax,
    Txa,
    NoTag,
    Kernel,
}

impl Exec {
    /// A conditional jump (`jt` and `jf` are its targets).
    fn is_conditional(self) -> bool {
        matches!(
            self,
            Exec::JeqK
                | Exec::JeqX
                | Exec::JgtK
                | Exec::JgtX
                | Exec::JgeK
                | Exec::JgeX
                | Exec::JsetK
                | Exec::JsetX
        )
    }
}

/// An indexed load's offset, `X + k`, unsigned as libpcap's (a sum past
/// the address space is past any frame).
#[inline]
fn indexed(x: u32, k: u32) -> usize {
    usize::try_from(u64::from(x) + u64::from(k)).unwrap_or(usize::MAX)
}

/// The big-endian word at `at`, if the frame holds it.
#[inline]
fn word(frame: &[u8], at: usize) -> Option<u32> {
    let b = frame.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// The big-endian half-word at `at`, if the frame holds it.
#[inline]
fn half(frame: &[u8], at: usize) -> Option<u32> {
    let b = frame.get(at..at.checked_add(2)?)?;
    Some(u32::from(u16::from_be_bytes(b.try_into().ok()?)))
}

/// Instruction classes, sizes, modes and operators (linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const MOD: u16 = 0x90;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// The operation of `i`, if the kernel knows its code.
fn decode(i: &Insn) -> Option<Exec> {
    let c = i.code;
    if c > 0xff {
        return None;
    }
    // By K or by X, as the code's source bit says.
    let pick = |by_k: Exec, by_x: Exec| if c & X == X { by_x } else { by_k };
    Some(match c {
        _ if c == LD | W | ABS || c == LD | H | ABS || c == LD | B | ABS => match i.k {
            // The kernel reads an extension whole, whatever the load's
            // size (libpcap's `vlan` loads them as bytes).
            AD_VLAN_TAG | AD_VLAN_TAG_PRESENT => Exec::NoTag,
            AD_ALU_XOR_X => Exec::XorX,
            k if k >= AD_OFF && (k - AD_OFF >= AD_MAX || (k - AD_OFF) % 4 != 0) => return None,
            k if k >= LL_OFF => Exec::Kernel,
            _ if c & 0x18 == W => Exec::LdW,
            _ if c & 0x18 == H => Exec::LdH,
            _ => Exec::LdB,
        },
        _ if c == LD | W | IND => Exec::LdWInd,
        _ if c == LD | H | IND => Exec::LdHInd,
        _ if c == LD | B | IND => Exec::LdBInd,
        _ if c == LD | W | LEN => Exec::LdLen,
        _ if c == LD | IMM => Exec::LdImm,
        _ if c == LD | MEM => Exec::LdMem,
        _ if c == LDX | W | IMM => Exec::LdxImm,
        _ if c == LDX | W | MEM => Exec::LdxMem,
        _ if c == LDX | W | LEN => Exec::LdxLen,
        _ if c == LDX | B | MSH => Exec::LdxMsh,
        _ if c == ST => Exec::St,
        _ if c == STX => Exec::Stx,
        _ if c == ALU | NEG => Exec::Neg,
        _ if c & 0x07 == ALU => match c & 0xf0 {
            ADD => pick(Exec::AddK, Exec::AddX),
            SUB => pick(Exec::SubK, Exec::SubX),
            MUL => pick(Exec::MulK, Exec::MulX),
            DIV => pick(Exec::DivK, Exec::DivX),
            MOD => pick(Exec::ModK, Exec::ModX),
            OR => pick(Exec::OrK, Exec::OrX),
            AND => pick(Exec::AndK, Exec::AndX),
            LSH => pick(Exec::LshK, Exec::LshX),
            RSH => pick(Exec::RshK, Exec::RshX),
            XOR => pick(Exec::XorK, Exec::XorX),
            _ => return None,
        },
        _ if c == JMP | JA => Exec::Ja,
        _ if c & 0x07 == JMP => match c & 0xf0 {
            JEQ => pick(Exec::JeqK, Exec::JeqX),
            JGT => pick(Exec::JgtK, Exec::JgtX),
            JGE => pick(Exec::JgeK, Exec::JgeX),
            JSET => pick(Exec::JsetK, Exec::JsetX),
            _ => return None,
        },
        _ if c == RET | K => Exec::RetK,
        _ if c == RET | A => Exec::RetA,
        _ if c == MISC | TAX => Exec::Tax,
        _ if c == MISC | TXA => Exec::Txa,
        _ => return None,
    })
}

/// The kernel's `check_load_and_stores`, step for step: one pass in
/// order (jumps go forward only), a jump handing what is written on its
/// way to its targets, a fall-through its own (a return's too: the
/// kernel does not tell that the next instruction is not reached from
/// it, so neither does this).
fn check_memory(steps: &[Step]) -> Result<(), BpfError> {
    // What every jump to each instruction brings: all words, for none.
    let mut masks = vec![u16::MAX; steps.len()];
    let mut valid = 0u16;
    for (at, i) in steps.iter().enumerate() {
        valid &= masks[at];
        let word = 1u16 << (i.k & 15);
        let mut to = |off: usize| {
            if let Some(m) = masks.get_mut(at + 1 + off) {
                *m &= valid;
            }
        };
        match i.exec {
            Exec::St | Exec::Stx => valid |= word,
            Exec::LdMem | Exec::LdxMem if valid & word == 0 => {
                return Err(bad(at, "reads a scratch word no way here wrote"))
            }
            Exec::Ja => {
                to(i.k as usize);
                valid = u16::MAX;
            }
            e if e.is_conditional() => {
                to(usize::from(i.jt));
                to(usize::from(i.jf));
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tcpdump -ddd 'tcp port 80'` (tcpdump 4.99.3, libpcap 1.10.3).
    const TCP_PORT_80: &str = "20\n40 0 0 12\n21 0 6 34525\n48 0 0 20\n21 0 15 6\n\
        40 0 0 54\n21 12 0 80\n40 0 0 56\n21 10 11 80\n21 0 10 2048\n48 0 0 23\n\
        21 0 8 6\n40 0 0 20\n69 6 0 8191\n177 0 0 14\n72 0 0 14\n21 2 0 80\n\
        72 0 0 16\n21 0 1 80\n6 0 0 262144\n6 0 0 0\n";

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// An Ethernet + IPv4 (options `ihl` words) + TCP frame between ports.
    fn v4_tcp(ihl: u8, sport: u16, dport: u16, frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = vec![0u8; usize::from(ihl) * 4];
        ip[0] = 0x40 | ihl;
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[9] = 6;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    #[test]
    fn tcpdump_program_judges_ports_options_and_fragments() {
        let p = BpfProgram::parse(TCP_PORT_80).unwrap();
        assert_eq!(p.instructions().len(), 20);
        p.check_offline().unwrap();
        let len = |f: &Vec<u8>| f.len() as u32;
        for (f, want) in [
            (v4_tcp(5, 80, 4000, 0), 262_144),
            (v4_tcp(5, 4000, 80, 0), 262_144),
            // Options move the ports: the header length is read.
            (v4_tcp(7, 4000, 80, 0), 262_144),
            (v4_tcp(5, 4000, 81, 0), 0),
            // A later fragment has no ports to judge.
            (v4_tcp(5, 4000, 80, 0x0010), 0),
        ] {
            assert_eq!(p.run(&f, len(&f)), want);
        }
        // Cut before the ports: rejected, not read past the end.
        let f = v4_tcp(5, 4000, 80, 0);
        assert_eq!(p.run(&f[..35], 60), 0);
        assert_eq!(p.run(&f[..38], 60), 262_144);
        assert_eq!(p.run(&[], 0), 0);
    }

    /// `tcpdump -i lo -ddd 'vlan 5'`: a live program, asking the kernel
    /// for the tag it took out (byte-sized loads of the extensions), else
    /// reading it in the frame. On a file's frames the tag is in them.
    #[test]
    fn a_live_vlan_program_reads_the_tag_in_a_files_frame() {
        let p = BpfProgram::parse(
            "15\n48 0 0 4294963248\n21 4 0 1\n40 0 0 12\n21 2 0 33024\n21 1 0 34984\n\
             21 0 8 37120\n48 0 0 4294963248\n21 0 2 1\n48 0 0 4294963244\n5 0 0 1\n\
             40 0 0 14\n84 0 0 4095\n21 0 1 5\n6 0 0 262144\n6 0 0 0\n",
        )
        .unwrap();
        p.check_offline().unwrap();
        let tagged = |tpid: u16, vid: u16| {
            let mut f = vec![0u8; 64];
            f[12..14].copy_from_slice(&tpid.to_be_bytes());
            f[14..16].copy_from_slice(&(0x2000 | vid).to_be_bytes());
            f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
            f
        };
        assert_eq!(p.run(&tagged(0x8100, 5), 64), 262_144);
        assert_eq!(p.run(&tagged(0x88a8, 5), 64), 262_144);
        assert_eq!(p.run(&tagged(0x8100, 6), 64), 0);
        assert_eq!(p.run(&tagged(0x0800, 5), 64), 0);
    }

    #[test]
    fn the_three_text_forms_read_the_same() {
        let ddd = BpfProgram::parse(TCP_PORT_80).unwrap();
        let commas = TCP_PORT_80.trim().replace('\n', ",");
        assert_eq!(BpfProgram::parse(&commas).unwrap(), ddd);
        let dd: String = ddd
            .instructions()
            .iter()
            .map(|i| format!("{{ {:#x}, {}, {}, {:#010x} }},\n", i.code, i.jt, i.jf, i.k))
            .collect();
        assert_eq!(BpfProgram::parse(&format!("# dd\n{dd}")).unwrap(), ddd);
    }

    #[test]
    fn bad_text_says_why() {
        for (text, says) in [
            ("", "no instructions"),
            ("2\n6 0 0 1\n", "says 2 instructions"),
            ("1\n6 0 0 x\n", "not a number"),
            ("1\n6 0 300 1\n", "jf 300"),
            ("{ 6, 0, 0 }", "four an instruction"),
        ] {
            let e = BpfProgram::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_kernels_checks_refuse_what_it_refuses() {
        let ret = insn(RET | K, 0, 0, 1);
        for (insns, says) in [
            (vec![], "1 to 4096"),
            (vec![ret; MAX_INSTRUCTIONS + 1], "1 to 4096"),
            (vec![insn(0xff, 0, 0, 0), ret], "unknown code"),
            (vec![insn(ALU | DIV | K, 0, 0, 0), ret], "division by zero"),
            (vec![insn(ALU | MOD | K, 0, 0, 0), ret], "division by zero"),
            (vec![insn(ALU | LSH | K, 0, 0, 32), ret], "shift"),
            (vec![insn(JMP | JA, 0, 0, 1), ret], "out of the program"),
            (
                vec![insn(JMP | JEQ | K, 0, 1, 0), ret],
                "out of the program",
            ),
            (vec![insn(ST, 0, 0, 16), ret], "16 words"),
            (vec![insn(LD | IMM, 0, 0, 0)], "ends with a return"),
            (vec![insn(LD | MEM, 0, 0, 3), ret], "no way here wrote"),
            (
                vec![insn(LD | W | ABS, 0, 0, AD_OFF + 64), ret],
                "unknown kernel extension 64",
            ),
            (
                vec![insn(LD | B | ABS, 0, 0, AD_OFF + 2), ret],
                "unknown kernel extension 2",
            ),
            // Written on the way to a return only: the kernel carries what
            // a return's way wrote on to the next instruction, and refuses
            // this all the same (its second way in wrote nothing).
            (
                vec![
                    insn(JMP | JEQ | K, 2, 0, 1),
                    insn(ST, 0, 0, 0),
                    insn(JMP | JA, 0, 0, 1),
                    insn(RET | K, 0, 0, 0),
                    insn(LD | MEM, 0, 0, 0),
                    ret,
                ],
                "no way here wrote",
            ),
            // Written on one way in only.
            (
                vec![
                    insn(JMP | JEQ | K, 0, 1, 0),
                    insn(ST, 0, 0, 3),
                    insn(LD | MEM, 0, 0, 3),
                    ret,
                ],
                "no way here wrote",
            ),
        ] {
            let e = BpfProgram::new(insns).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        // Written on both ways in.
        BpfProgram::new(vec![
            insn(JMP | JEQ | K, 0, 1, 0),
            insn(ST, 0, 0, 3),
            insn(STX, 0, 0, 3),
            insn(LD | MEM, 0, 0, 3),
            insn(RET | A, 0, 0, 0),
        ])
        .unwrap();
    }

    #[test]
    fn arithmetic_memory_and_returns() {
        let run = |insns: Vec<Insn>, frame: &[u8]| BpfProgram::new(insns).unwrap().run(frame, 1000);
        let ret_a = insn(RET | A, 0, 0, 0);
        // (7 * 6 - 2) / 4 = 10; % 3 = 1; ^ 5 = 4; << 2 = 16; >> 1 = 8.
        let prog = vec![
            insn(LD | IMM, 0, 0, 7),
            insn(ALU | MUL | K, 0, 0, 6),
            insn(ALU | SUB | K, 0, 0, 2),
            insn(ALU | DIV | K, 0, 0, 4),
            insn(ALU | MOD | K, 0, 0, 3),
            insn(ALU | XOR | K, 0, 0, 5),
            insn(ALU | LSH | K, 0, 0, 2),
            insn(ALU | RSH | K, 0, 0, 1),
            ret_a,
        ];
        assert_eq!(run(prog, &[]), 8);
        // Division by a zero X rejects the frame.
        let div_x = vec![insn(LD | IMM, 0, 0, 7), insn(ALU | DIV | X, 0, 0, 0), ret_a];
        assert_eq!(run(div_x, &[]), 0);
        // Shifts by X: from 32 on, 0, as libpcap's interpreter gives.
        for (by, want) in [(31, 1 << 31), (32, 0), (33, 0)] {
            let shl_x = vec![
                insn(LDX | W | IMM, 0, 0, by),
                insn(LD | IMM, 0, 0, 1),
                insn(ALU | LSH | X, 0, 0, 0),
                ret_a,
            ];
            assert_eq!(run(shl_x, &[]), want, "1 << {by}");
            let shr_x = vec![
                insn(LDX | W | IMM, 0, 0, by),
                insn(LD | IMM, 0, 0, 1 << 31),
                insn(ALU | RSH | X, 0, 0, 0),
                ret_a,
            ];
            assert_eq!(run(shr_x, &[]), want >> 31, "2^31 >> {by}");
        }
        // Memory, TAX/TXA, NEG, len, a word load and an IPv4 header length.
        let prog = vec![
            insn(LD | W | ABS, 0, 0, 0),
            insn(ST, 0, 0, 5),
            insn(LDX | B | MSH, 0, 0, 4),
            insn(MISC | TXA, 0, 0, 0),
            insn(ALU | NEG, 0, 0, 0),
            insn(ALU | ADD | X, 0, 0, 0),
            insn(MISC | TAX, 0, 0, 0),
            insn(LD | MEM, 0, 0, 5),
            insn(ALU | ADD | X, 0, 0, 0),
            insn(LDX | W | LEN, 0, 0, 0),
            insn(ALU | ADD | X, 0, 0, 0),
            ret_a,
        ];
        assert_eq!(run(prog, &[0, 0, 1, 2, 0x47]), 0x0102 + 1000);
        // Kernel extensions: the VLAN tag reads 0, whatever the load's
        // size; XOR_X is A ^ X; another rejects, and the program says it
        // cannot run offline, as one loading relative to a header does.
        for size in [W, H, B] {
            let tag = vec![
                insn(LD | IMM, 0, 0, 7),
                insn(LD | size | ABS, 0, 0, AD_VLAN_TAG_PRESENT),
                insn(RET | A, 0, 0, 0),
            ];
            assert_eq!(run(tag, &[]), 0);
        }
        let xor = vec![
            insn(LDX | W | IMM, 0, 0, 6),
            insn(LD | IMM, 0, 0, 3),
            insn(LD | B | ABS, 0, 0, AD_ALU_XOR_X),
            insn(RET | A, 0, 0, 0),
        ];
        assert_eq!(run(xor, &[]), 5);
        let net = BpfProgram::new(vec![
            insn(LD | B | ABS, 0, 0, LL_OFF + (1 << 20) + 9),
            insn(RET | A, 0, 0, 0),
        ])
        .unwrap();
        assert_eq!(net.run(&[6; 64], 64), 0);
        let e = net.check_offline().unwrap_err().to_string();
        assert!(e.contains("at -1048567 from a header"), "{e}");
        let pkttype = BpfProgram::new(vec![
            insn(LD | W | ABS, 0, 0, AD_OFF + 4),
            insn(RET | K, 0, 0, 9),
        ])
        .unwrap();
        assert_eq!(pkttype.run(&[0; 64], 64), 0);
        assert!(pkttype
            .check_offline()
            .unwrap_err()
            .to_string()
            .contains("extension 4"));
    }

    /// Every code the kernel takes, and a few it does not.
    const CODES: &[u16] = &[
        0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x80, 0x00, 0x60, 0x01, 0x61, 0x81, 0xb1, 0x02, 0x03,
        0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74,
        0x7c, 0x84, 0x94, 0x9c, 0xa4, 0xac, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d,
        0x06, 0x16, 0x07, 0x87, 0x08, 0x8c, 0x0d, 0x0e, 0x1ff,
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any program the checks take runs to a return on any frame,
        /// never past its end, whatever its loads, jumps and divisions;
        /// and programs with kernel extensions say so.
        #[test]
        fn any_checked_program_ends_without_panicking(
            raw in proptest::collection::vec(
                (0..CODES.len(), 0u8..6, 0u8..6, proptest::prop_oneof![
                    0u32..80,
                    proptest::num::u32::ANY,
                    proptest::strategy::Just(AD_VLAN_TAG),
                    proptest::strategy::Strategy::prop_map(0u32..16, |i| AD_OFF + 4 * i),
                    (LL_OFF..=u32::MAX),
                ]),
                1..24,
            ),
            frame in proptest::collection::vec(proptest::num::u8::ANY, 0..100),
            wire_len in proptest::num::u32::ANY,
        ) {
            let mut insns: Vec<Insn> = raw
                .iter()
                .map(|&(c, jt, jf, k)| insn(CODES[c], jt, jf, k))
                .collect();
            // Most end with a return, so that many pass the checks.
            if insns.len() % 4 != 0 {
                insns.push(insn(RET | A, 0, 0, 0));
            }
            if let Ok(p) = BpfProgram::new(insns) {
                let _ = p.run(&frame, wire_len);
                let _ = p.run(&[], 0);
                // Absolute loads at negative offsets but the three run here.
                let extension = p.instructions().iter().any(|i| {
                    i.code & 0xe0 == ABS && i.code & 0x07 == LD && i.k >= LL_OFF
                        && !matches!(i.k, AD_VLAN_TAG | AD_VLAN_TAG_PRESENT | AD_ALU_XOR_X)
                });
                proptest::prop_assert_eq!(p.check_offline().is_err(), extension);
            }
        }

        /// Any text parses or says why, without panicking.
        #[test]
        fn any_text_parses_or_fails_cleanly(text in "[0-9x,{} \\n#a-f-]{0,80}") {
            if let Ok(p) = BpfProgram::parse(&text) {
                let _ = p.run(&[0x45; 40], 40);
            }
        }
    }
}
