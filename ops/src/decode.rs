//! The one decoder from raw fuzz bytes to an always-valid op stream, used by
//! every fuzzing engine, and its inverse [`encode`] (to seed fuzzers from
//! `.ops` corpus files).
//!
//! [`decode`] is total: every byte string gives a stream in which every op
//! names a process that is live at that point, there are at most
//! `max_ops` ops, only kinds enabled in the config occur, and (outside wide
//! mode, below) every address is in the sub-window
//! `[window_start, window_start + window_len)` and every length in
//! `1..=max_len`. Running out of bytes ends the stream; a partly read op is
//! dropped.
//!
//! The decoder steers random bytes towards the shapes reverse-map bugs need
//! (docs/bugs.md: fork chains with exits in between, mprotect splits in
//! several processes, writes to inherited pages): it remembers roughly which pages each live process has mapped
//! and written, most address bytes pick one of those pages, and the op
//! weights depend on what is mapped and how many processes are live. This
//! memory is computed from the ops alone (never from what a kernel or a
//! design did), so it can be wrong; that costs only efficiency, never
//! validity.
//!
//! # Byte format
//!
//! ```text
//! input  = ["rmW1"] swarm op*
//! swarm  = k0 k1 m            3 bytes
//! op     = kind-byte args     args depend on the kind
//! ```
//!
//! - **Wide mode.** An input starting with the magic `rmW1` is in wide mode:
//!   in it, a value field, ADDR\* or LEN\* (below) whose first byte is
//!   `0xFF` is followed by an unsigned LEB128 varint (at most 10 bytes)
//!   that gives the raw value, unreduced: addresses, lengths, values, file
//!   offsets and `fail-alloc` counts outside the sub-window can be
//!   expressed. [`encode`] uses wide mode only when a stream needs it.
//! - **Swarm.** `k0 | k1 << 8` switches op kinds on (bit `i` is kind `i` in
//!   the order mmap, munmap, mprotect, mremap, madvise, fork, exit, read,
//!   write, swapout, reclaim, migrate, fail-alloc, dump, for bits 0..=13).
//!   `mmap` is always on (without it nothing ever happens). Bit 14 and bit
//!   4 of `m` switch `fork` on as well, bit 15 and bit 5 of `m` `write`,
//!   bit 6 of `m` `read` and bit 7 of `m` `exit` (so `fork` and `write` are
//!   on in 7/8 of the inputs, `read` and `exit` in 3/4); the low 4 bits of
//!   `m` switch map kinds (anon, shared, file, sfile) on. Version 2: bit 14
//!   *and* bit 4 of `m` switch concurrent blocks (`par`, kind 15) on, bit
//!   15 *and* bit 5 of `m` `referenced` (kind 14), each in 1/4 of the
//!   inputs; an input whose header switches neither decodes as it did
//!   before version 2. Bit 0 of `k0 ^ k1 ^ m` switches exec's two ops on
//!   (`exec-stack`, kind 16, and `exec-shift`, kind 17; half of the inputs,
//!   and the `FF FF FF` header [`encode`] writes); an input whose header
//!   leaves it clear decodes as it did before they were added (the mask
//!   became 32 bits wide then). Each mask is intersected with the config's; an empty
//!   intersection means the config's set; `par` is off when the config
//!   enables no walker (swapout, migrate, referenced). When bit 1 of
//!   `k0 ^ k1 ^ m` is clear (half of the inputs; not the `FF FF FF` header
//!   [`encode`] writes), the input is a **two-protection** input: its other
//!   protection is `rwx`, `r`, `rx`, `none` by bits 2–3 of `k0 ^ k1 ^ m`
//!   (PROT below). Fewer than 3 bytes: empty stream.
//! - **Memory.** For each live process the decoder keeps two sets of pages
//!   among the first `min(window_len, 256)` pages of the sub-window, MAPPED
//!   and WRITTEN (a subset of MAPPED), the protection of each MAPPED page,
//!   its temporary exec STACK (none at first), and for the stream LAST, the
//!   ADDR\* (below) of the last op that had
//!   one, the destination for an `mremap` move (none at first). After each
//!   op (ranges clipped to those pages):
//!   - `mmap` adds its range to MAPPED with its protection and removes it
//!     from WRITTEN (without `replace`, only if no page of the range is in
//!     MAPPED: otherwise it fails with `EEXIST`); `mprotect` sets the
//!     protection of its MAPPED pages;
//!   - `munmap` removes its range from both; `madvise .. dontneed` from
//!     WRITTEN; `write` adds its page to WRITTEN if it is in MAPPED;
//!   - `mremap` whose OLD is in MAPPED: in place, a shrink removes the
//!     pages past NEWLEN from both and a growth adds the new pages to
//!     MAPPED if none of them is in it; a move removes `OLD..OLD+OLDLEN`
//!     from WRITTEN and, without `dontunmap`, from MAPPED, then adds
//!     `NEW..NEW+NEWLEN` to MAPPED (with the protection of `OLD`'s page;
//!     the same for an in-place growth) and sets its WRITTEN pages to those
//!     written at the same offsets of `OLD` (the pages move with it);
//!   - `exec-stack` without a STACK, whose range has no MAPPED page, adds
//!     it to MAPPED (`rw`) and makes it the STACK; `exec-shift` of a
//!     process with a STACK moves it (MAPPED and WRITTEN) down by SHIFT
//!     pages when none of the SHIFT pages below it is MAPPED, and (moved
//!     or not, unless the shift failed) ends the STACK;
//!   - `fork` gives the child a copy of the parent's sets (`dontfork` is
//!     ignored); `exit` drops the process's.
//! - **Kind byte.** The kinds allowed for this op are the enabled ones,
//!   minus `fork` when `max_procs` processes are live, minus `exit` when
//!   only one process is, minus every kind that names a process when none
//!   is. The byte modulo the sum of their weights picks one by weight, from
//!   the first row of this table that applies:
//!
//!   | when                       | mmap | munmap | mprotect | mremap | madvise | fork | exit | read | write | swapout | reclaim | migrate | fail-alloc | dump | referenced | par | exec-stack | exec-shift |
//!   |----------------------------|-----:|-------:|---------:|-------:|--------:|-----:|-----:|-----:|------:|--------:|--------:|--------:|-----------:|-----:|-----------:|----:|-----------:|-----------:|
//!   | no MAPPED page at all      |   16 |      1 |        1 |      1 |       1 |    3 |    2 |    1 |     1 |       1 |       1 |       1 |          1 |    1 |          1 |   1 |          3 |          1 |
//!   | no WRITTEN page at all     |    6 |      1 |        3 |      2 |       1 |    3 |    2 |    4 |    16 |       1 |       1 |       1 |          1 |    1 |          1 |   2 |          1 |          1 |
//!   | 1 process live             |    9 |      2 |        5 |      3 |       2 |    9 |    1 |    5 |    13 |       2 |       1 |       2 |          1 |    1 |          2 |   3 |          1 |          2 |
//!   | 2 or 3 live                |    7 |      2 |        6 |      3 |       2 |    7 |    5 |    6 |    15 |       2 |       1 |       2 |          1 |    1 |          2 |   3 |          1 |          2 |
//!   | 4 or 5 live                |    6 |      2 |        6 |      3 |       2 |    4 |    8 |    6 |    16 |       2 |       1 |       2 |          1 |    1 |          2 |   3 |          1 |          2 |
//!   | 6 or more live             |    5 |      2 |        5 |      3 |       2 |    2 |   12 |    6 |    17 |       2 |       1 |       2 |          1 |    1 |          2 |   3 |          1 |          2 |
//!
//!   While some live process has a STACK, `exec-shift` weighs 4 in every
//!   row. `par` is not allowed while no live process has a MAPPED page.
//!   Newer kinds come last, so the byte of every older kind is unchanged
//!   where they are off ([`encode`] writes the smallest byte of each
//!   kind).
//!
//!   Exception: when exactly one process is live and `exit` is enabled, a
//!   kind byte `0xFF` is followed by another byte: `0xFF` again is `exit`
//!   of that process (no `P` byte follows), any other byte is the kind
//!   byte instead (so that the last process exits rarely and an input is
//!   not spent on ops that cannot name a process). No allowed kind: the
//!   stream ends.
//! - **Arguments**, in the order of the text form:
//!   - `P` (one byte `s`), for mmap, fork and exit: `s >= 0xC0` picks the
//!     newest live process, otherwise `live[s % live_count]` in creation
//!     order. For the kinds with an ADDR\* (munmap, mprotect, mremap,
//!     madvise, read, write, swapout, migrate): `0x80 <= s < 0xC0` picks
//!     `live[(s - 0x80) % live_count]`; otherwise, if some live process has
//!     a MAPPED page, `s < 0x80` picks the `(s % m)`-th of the `m` such
//!     processes (in creation order) and `s >= 0xC0` the newest of them,
//!     and if none has, as for mmap. A fork's child is the next unused
//!     number.
//!   - value field `range(n)`: one byte `b`, `b % n`, when `n <= 256`;
//!     otherwise two bytes, `u16::from_le_bytes([b0, b1]) % n`. Then
//!     ADDR/NEW = `window_start + range(window_len)`,
//!     LEN/NEWLEN = `1 + range(max_len)`, OFF = `range(72)` (file pages
//!     64, plus some past the end), fail-alloc N = `1 + range(8)`.
//!   - ADDR\* (mapped-or-direct address, also OLD of mremap) of process `P`:
//!     if `P` has no MAPPED page, ADDR. Otherwise one byte `b`:
//!     - `b < 0x60`: page number `b % |MAPPED|` of MAPPED, in ascending
//!       order from 0;
//!     - `0x60 <= b < 0xA0`: page number `b % |WRITTEN|` of WRITTEN (a page
//!       that is probably present, maybe shared with a relative); if
//!       WRITTEN is empty, as for `b < 0x60`;
//!     - `0xA0 <= b < 0xC0`: page number `b % |U|` of U, the MAPPED pages
//!       not in WRITTEN (a fault in a mapping not faulted yet, e.g. one
//!       just made next to a faulted one); if U is empty, as for
//!       `b < 0x60`;
//!     - `0xC0 <= b < 0xE0`: LAST if it is in MAPPED (a page another
//!       process or op just used); otherwise as for `b < 0x60`;
//!     - `b >= 0xE0`, the direct form: when `window_len <= 32`,
//!       `window_start + (b - 0xE0) % window_len`; otherwise an ADDR
//!       follows.
//!   - LEN\* (run-or-direct length) at address `A` of process `P`: with
//!     `c = min(r, max_len)`, `r` the number of consecutive MAPPED pages
//!     from `A` on (0 if `A` is not in MAPPED): if `c = 0`, LEN. Otherwise
//!     one byte `b`: `b < 0xE0` gives `1 + b % c` (a range inside the run,
//!     often shorter than its mapping: mprotect and madvise split VMAs);
//!     `b >= 0xE0`, the direct form: when `max_len <= 32`,
//!     `1 + (b - 0xE0) % max_len`; otherwise a LEN follows.
//!   - VALUE (one byte `b`): `b < 0x80` gives `b`; `0x80..=0xBF` gives the
//!     initial contents of a file page, `((b >> 4) & 3) << 32 | (b & 0xF)`;
//!     `0xC0..=0xFE` gives `0xC0DE_0000_0000_0000 | b`; `0xFF` gives
//!     `u64::MAX`.
//!   - PROT of mmap (one byte `pr`): `pr & 15` picks from `rw` (10 times),
//!     `rwx` (3 times), `r`, `rx`, `none`, in that order: mostly writable.
//!     PROT of mprotect (one byte `pr`): `pr & 7` picks from `r`, `rw`,
//!     `r`, `rw`, `rwx`, `rx`, `none`, `rw`: often not the `rw` of most
//!     mappings (a split), often `rw` again (a merge back). In a
//!     two-protection input, either PROT byte with bit 7 clear gives `rw`
//!     (bit 0 clear) or the input's other protection (bit 0 set), and with
//!     bit 7 set the tables above: protections coincide often, so that a
//!     mapping made with another protection than its neighbour's and a
//!     range given that protection later can merge.
//!   - mmap: `P GADDR LEN pr kd [OFF]`, GADDR (gap-or-direct address): the
//!     *gaps* of `P` are the pages right after each run of MAPPED. Without
//!     gaps, ADDR. Otherwise one byte `b`: `b < 0x40` gives gap number
//!     `b % |gaps|` in ascending order, and the mmap fills the gap: LEN
//!     is at most the number of pages up to the next MAPPED page above it
//!     (if any), so that it sits next to the mappings on both sides (where
//!     a later fault reuses a neighbour's anon_vma); `b >= 0x40`, the
//!     direct form: when `window_len <= 191`, `window_start + (b - 0x40)
//!     % window_len`; otherwise an ADDR follows. PROT from `pr`, `replace` when
//!     `(pr >> 4) & 3 == 3`; KIND by weight (anon 4, shared 1, file 2,
//!     sfile 1) from `(kd & 0x3F) % total` over the enabled map kinds, file
//!     number `kd >> 6`; OFF only for file kinds.
//!   - mremap: `P sh OLD* OLDLEN* [NEWLEN] [NEW*]` (OLD\* an ADDR\*,
//!     OLDLEN\* a LEN\* at OLD) with `sh % 8`: 0..=2 in place (NEWLEN
//!     read); 3 and 7 `to NEW` with NEWLEN = OLDLEN; 4 the same with
//!     `dontunmap`; 5 `to NEW` (NEWLEN read); 6 the same with `dontunmap`.
//!     NEW\* (edge-or-direct destination): the *edges* of `P` are the
//!     pages right after each run of MAPPED and the pages NEWLEN before
//!     each run's first page (with nothing mapped in between): a move
//!     there sits next to a mapping, where `copy_vma` may merge. Without
//!     edges, ADDR. Otherwise one byte `b`: `b < 0x60` gives edge number
//!     `b % |edges|` in ascending order; `b >= 0x60`, the direct form:
//!     when `window_len <= 159`, `window_start + (b - 0x60) % window_len`;
//!     otherwise an ADDR follows. The move back: when `sh % 8` is 3, 4 or
//!     7, bit 3 of `sh` is set and `P`'s last move (of this stream, as
//!     MEMORY tracks it: its source, destination and the pages of
//!     `min(OLDLEN, NEWLEN)` within the tracked pages) left its destination
//!     pages all in MAPPED, the op is that move undone, `mremap P DEST LEN
//!     LEN to SOURCE` (`dontunmap` for 4), and nothing more is read: the
//!     range returns next to the pages it was split from, its pgoff
//!     unchanged, where `copy_vma` merges it. A block's mutator moves back
//!     for shapes 5 and 6 too (`dontunmap` for 6). A fork's child inherits
//!     the last move.
//!   - exec-stack `P HADDR LEN`, HADDR (hole-or-direct address): the
//!     *holes* of `P` are the runs of pages not in MAPPED (the first page
//!     of each). Without holes, ADDR. Otherwise one byte `b`: `b < 0x40`
//!     gives hole number `b % |holes|` in ascending order, of `h` pages up
//!     to the next MAPPED page (or the tracked pages' end), and the stack
//!     goes at its top: LEN is at most `h - 1` (at least 1) and the
//!     address is the hole's end minus LEN, which leaves room below for
//!     the exec-shift; `b >= 0x40`, the direct form, as for mmap's GADDR.
//!     exec-shift `P SHIFT`: `P` as for the kinds with an ADDR\*, except
//!     that `s < 0x80` picks the `(s % k)`-th of the `k` processes with a
//!     STACK when there are any; SHIFT is a tracked field: with `r > 0`
//!     pages not in MAPPED right below `P`'s STACK, a choice `b < 0xE0`
//!     gives `1 + b % r`; otherwise (or without room) the direct form, a
//!     value field `range(window_len)`.
//!   - mprotect `P ADDR* LEN* pr`: when bits 4, 5 and 6 of `pr` are all
//!     set (bit 4 alone for a block's mutator), and the page right after
//!     the *mapping* at ADDR (the run of MAPPED pages around it with its
//!     protection) is MAPPED, the mapping (its last `max_len` pages when
//!     it is longer) gets that page's protection, ADDR\* and LEN\*
//!     notwithstanding: it merges with the mapping after it (`vma_merge`
//!     case 8 for a whole mapping). Otherwise, when bits 5 and 6 of `pr` are both set
//!     and a *neighbour* is mapped, the neighbour's protection (else PROT
//!     above): for a range inside the destination of `P`'s last move, the
//!     page right below that move's source, else right after it (where the
//!     range would merge on its way back); for another range, the page
//!     right below it, else right after it. Madvise `P ADDR* LEN* ad` (ADVICE
//!     `ad % 5`: dontneed, dontfork, dofork, wipeonfork, keeponfork);
//!     munmap `P ADDR* LEN`; fork, exit `P`; read, swapout, migrate
//!     `P ADDR*`; write `P ADDR* VALUE`; fail-alloc `N`; reclaim and dump
//!     take nothing. LEN\* is at the op's ADDR\*. referenced (sequential)
//!     `P ADDR*`, like swapout.
//! - **Blocks** (`par`): `sh actor+ n byte{n % 32}`. The shape byte `sh`
//!   gives the actors in letter order: a mutator (first, or last when bit
//!   6 is set; when bit 7 is set, `mremap` is on and a live process's last
//!   move can go back (the move back above), the mutator is the move back of
//!   the newest such process and reads no byte, and each walker read after
//!   it is a `migrate` when migrate is on, of the mutator's process unless
//!   its selector is in `0x80..0xC0`), one walker (two when bit 0 is
//!   set), a fault when bit 1 is
//!   set and `read` or `write` is on. Walker j's kind is the
//!   `((sh >> (2 + 2j)) & 3) % w`-th of the `w` walker kinds on (swapout,
//!   migrate, referenced in that order; the swarm's, or the config's when
//!   the swarm has none). Each actor is read, and applied to the memory,
//!   in letter order (as a consumer that ignores blocks runs them):
//!   - mutator: a kind byte picked by the table's row among the enabled
//!     kinds mmap .. exit and exec-shift that are allowed, then that op's
//!     `P` and arguments as above;
//!   - walker: `P` (as for the kinds with an ADDR\*, except that `s >=
//!     0xC0` picks the process of a mutator read before the walker, if
//!     it is live) and a target, a
//!     tracked field like ADDR\* whose choice `b < 0xE0` is page
//!     `b % |W|` of W, the union of WRITTEN and, when `P` is the process
//!     of a mutator read before the walker, its WRITTEN before that
//!     mutator was applied (the pages it moves or unmaps, which the walk
//!     races); of MAPPED when W is empty; but a choice `b < 0xC0` is page
//!     `b % |R|` of R, the pages of that earlier WRITTEN that are not in
//!     WRITTEN now (those the mutator moved or unmapped) and, for an
//!     `mprotect` mutator, the WRITTEN pages of the mapping right after its
//!     range, when R is not empty. An `mprotect` mutator whose range takes
//!     the protection of the page right after it (a *merge*) makes the
//!     walkers read after it act as after a move back: `s < 0x80` picks
//!     the mutator's process too, and each is a `migrate` when migrate is
//!     on;
//!   - fault: one byte (bit 0: `write` when both are on), `P`, ADDR\*, and
//!     VALUE for a write.
//!
//!   Then the schedule: a byte whose low 5 bits are the number of schedule
//!   bytes that follow (`#HEX`). A block that does not fit in `max_ops`, or
//!   runs out of bytes, ends the stream. Nothing read for the ops depends
//!   on the schedule bytes: [`block_layout`] says where they are, and
//!   [`schedule::mutate_schedule`] changes them alone.
//! - **Per-VMA-lock aims** (bit 5 of `k0 ^ k1 ^ m`, half of the inputs;
//!   `ops/src/decode/aim_vmalock.rs`). MEMORY also keeps ANON, the pages
//!   of mappings a write to a writable page gave an anon_vma (a merge by
//!   `mprotect` spreads it over the new run, a move carries it, `dontunmap`
//!   clears the source's). In a block with the bit set: a mutator
//!   `mprotect` whose PROT byte has bit 3 set, when its process has a
//!   faulted mapping next to an unfaulted one with another protection
//!   (the pair at ADDR\*'s mapping, or at the page of a fault read before
//!   the mutator, else pair number `pr >> 4` in address order), gives the
//!   faulted one's pages next to the other (at most `max_len`) the other's
//!   protection: a merge into an unfaulted VMA. A mutator `mremap` of
//!   shape 4 or 6 with bit 4 of `sh` set, when its process has a faulted
//!   mapping (at OLD\* or at such a fault's page, else the one holding
//!   ANON page number `sh >> 5`), is `mremap` of that whole mapping (at
//!   most `max_len` pages) `to NEW* dontunmap`, NEWLEN = OLDLEN, reading
//!   no LEN. After either, the block's fault is a `write` for the move
//!   (when write is on), its selector below `0x80` picks the mutator's
//!   process, and its ADDR\* choice below `0xC0` picks among the still
//!   mapped pages of the unfaulted mapping (merge) or of the source
//!   (move). [`encode`] never writes these bits (its PROT bytes are below
//!   8, its shape bytes below 8).
//!
//! - **Slot blocks** (bit 4 of `k0 ^ k1 ^ m`, half of the inputs and the
//!   `FF FF FF` header): a block whose shape byte has bit 7 set while no
//!   process's last move can go back reads its actors as in
//!   `decode/aim_slots.rs`: one or two walkers on a *victim*'s own pages
//!   (those it wrote itself since it was created, fork children first), a
//!   fault on a page of a mapping its process has not written (when
//!   `read` or `write` is on), and last a mutator that takes the first
//!   walker's target from the victim (`exit`, or a `munmap` or `mmap …
//!   replace` of the run of mapped pages around it): the shape of the
//!   type-stable anon_vma slot races. [`encode`] never sets shape bit 7.
//! - **Merge aim** (bit 6 of `k0 ^ k1 ^ m`; `aim_merge.rs`). In such an
//!   input, a block mutator's kind byte from `0x80` on, when `mprotect` is
//!   on and a live process has a *boundary* (pages `i - 1` and `i` MAPPED
//!   with different protections), is a merging `mprotect`: a process byte
//!   `s` (`s % k` of the `k` processes with a boundary), a choice byte `c`
//!   (`c & 3`: 0 and 1 the mapping before the boundary, its last
//!   `max_len` pages, to the protection of the one after it; 2 a head of
//!   the one after it to the protection of the one before; 3 a tail of the
//!   one before to the protection of the one after; the boundary is
//!   `(c >> 2) % n` of the `n` whose racing pages, below, are not empty,
//!   of all when none is), and for a head or a tail a length byte `l`
//!   (below `0x80`, up to the `l % w`-th of its `w` WRITTEN pages when
//!   there are any, else `1 + l % m`; at most `max_len` pages and, when
//!   the mapping has more than one, not all of it). Its walkers act as
//!   after a merge (the mutator's process for a selector below `0x80`,
//!   `migrate` when on), and the raced pages of their target are the
//!   WRITTEN pages of the mapping taken over (whole) or of the range
//!   (head, tail). Other kind bytes, and inputs with the bit clear, decode
//!   as before; [`encode`] writes kind bytes below `0x80`.
//!
//! [`encode`] writes every ADDR\* and LEN\* in its direct form, the
//! smallest byte for every choice, and a selector byte that [`decode`] maps
//! back to the op's process (below `0x80` for one with a MAPPED page,
//! `0x80 +` its index otherwise, for the kinds with an ADDR\*), so that
//! `decode(encode(s)) == s`.

use std::fmt;
use std::ops::{BitAnd, BitOr, Range, Sub};

mod aim_merge;
mod aim_slots;
mod aim_vmalock;
pub mod schedule;

use crate::print::print_op;
use crate::{Advice, Block, FILE_PAGES, Kind, MremapTo, NR_FILES, Op, Pid, Prot, Sched, Stream};

/// How many op kinds the decoder generates: every keyword of
/// [`OpKinds`] but `par`: what a fuzzing run's "op kinds N/M" counts
/// against.
pub const DECODED_OP_KINDS: usize = OP_KEYWORDS.len() - 1;

/// Op keywords in bit order of [`OpKinds`] (`par` is a concurrent block).
const OP_KEYWORDS: [&str; 18] = [
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "fork",
    "exit",
    "read",
    "write",
    "swapout",
    "reclaim",
    "migrate",
    "fail-alloc",
    "dump",
    "referenced",
    "par",
    "exec-stack",
    "exec-shift",
];

/// Relative frequency of each op kind, in bit order, by situation (see
/// [`Live::weights`]): mmap while nothing is mapped, writes once something
/// is, forks while few processes are live, exits once many are. Every
/// weight is non-zero (an allowed kind must have a kind byte) and every row
/// sums to at most 255 (so that [`weighted_byte`] is never [`LAST_EXIT`]).
/// exec's ops come last: an input whose swarm header switches them off
/// picks every other kind as before they were added.
const OP_WEIGHTS: [[u8; 18]; 6] = [
    // mmap munmap mprotect mremap madvise fork exit read write swapout
    // reclaim migrate fail-alloc dump referenced par exec-stack exec-shift
    // No live process has anything mapped.
    [16, 1, 1, 1, 1, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1],
    // Something is mapped, nothing written.
    [6, 1, 3, 2, 1, 3, 2, 4, 16, 1, 1, 1, 1, 1, 1, 2, 1, 1],
    // One process live (its exit has its own bytes, [`LAST_EXIT`]).
    [9, 2, 5, 3, 2, 9, 1, 5, 13, 2, 1, 2, 1, 1, 2, 3, 1, 2],
    // 2 or 3 live.
    [7, 2, 6, 3, 2, 7, 5, 6, 15, 2, 1, 2, 1, 1, 2, 3, 1, 2],
    // 4 or 5 live.
    [6, 2, 6, 3, 2, 4, 8, 6, 16, 2, 1, 2, 1, 1, 2, 3, 1, 2],
    // 6 or more live.
    [5, 2, 5, 3, 2, 2, 12, 6, 17, 2, 1, 2, 1, 1, 2, 3, 1, 2],
];

/// [`OP_WEIGHTS`] while some live process has a temporary exec stack:
/// exec-shift (the last column) weighs [`STACK_SHIFT_WEIGHT`].
const STACK_WEIGHTS: [[u8; 18]; 6] = {
    let mut t = OP_WEIGHTS;
    let mut r = 0;
    while r < t.len() {
        t[r][17] = STACK_SHIFT_WEIGHT;
        r += 1;
    }
    t
};
/// exec-shift's weight while a process has a temporary stack.
const STACK_SHIFT_WEIGHT: u8 = 4;

// Checks the rules of [`OP_WEIGHTS`] and [`STACK_WEIGHTS`] at compile time.
const _: () = {
    let mut r = 0;
    while r < 2 * OP_WEIGHTS.len() {
        let row = if r < OP_WEIGHTS.len() {
            &OP_WEIGHTS[r]
        } else {
            &STACK_WEIGHTS[r - OP_WEIGHTS.len()]
        };
        let (mut i, mut sum) = (0, 0u32);
        while i < row.len() {
            assert!(row[i] > 0);
            sum += row[i] as u32;
            i += 1;
        }
        assert!(sum <= 255);
        r += 1;
    }
};

/// The low 4 bits of an mmap PROT byte: mostly writable, so that writes
/// fault and copy.
const PROTS: [Prot; 16] = [
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rw,
    Prot::Rwx,
    Prot::Rwx,
    Prot::Rwx,
    Prot::R,
    Prot::Rx,
    Prot::None,
];

/// The low 3 bits of an mprotect PROT byte: often not the `rw` most
/// mappings have, so that mprotect splits, and `rw` to merge back.
const MPROTECT_PROTS: [Prot; 8] = [
    Prot::R,
    Prot::Rw,
    Prot::R,
    Prot::Rw,
    Prot::Rwx,
    Prot::Rx,
    Prot::None,
    Prot::Rw,
];

/// Relative frequency of each map kind: anon, shared, file, sfile.
const MAP_WEIGHTS: [u8; 4] = [4, 1, 2, 1];

/// Prefix that switches escapes to raw varints on.
const WIDE_MAGIC: [u8; 4] = *b"rmW1";
/// In wide mode, a value field starting with this byte is a raw varint.
const ESCAPE: u8 = 0xFF;
/// With one process live, this kind byte twice is its `exit`; once, followed
/// by another byte, it is ignored.
const LAST_EXIT: u8 = 0xFF;
/// Process selector bytes from this one on pick the newest live process.
const PICK_NEWEST: u8 = 0xC0;
/// For the kinds with a mapped-or-direct address, selector bytes below
/// this one pick among the processes that have something mapped.
const PICK_ANY: u8 = 0x80;
/// File offsets are drawn from `0..FILE_OFF_RANGE`.
const FILE_OFF_RANGE: u64 = FILE_PAGES + 8;
/// `fail-alloc N` takes `N` in `1..=FAIL_ALLOC_MAX`.
const FAIL_ALLOC_MAX: u64 = 8;
/// Upper bound on `max_procs` (the live set lives on the stack).
pub const MAX_PROCS_LIMIT: usize = 64;
/// Base of the distinctive write values.
const VALUE_TAG: u64 = 0xC0DE_0000_0000_0000;
/// The `replace` group of the mmap protection byte (its bits 4 and 5).
const REPLACE_GROUP: u8 = 3;
/// A tracked field whose first byte is below this one picks a choice (a
/// mapped page, a run length); from this one on it is in the direct form.
const DIRECT: u8 = 0xE0;
/// A direct form whose range has at most this many values is carried by
/// its first byte alone.
const COMPACT: u64 = 0x100 - DIRECT as u64;
/// An mremap destination whose byte is below this one is next to a
/// mapping ([`edges`]); from this one on it is in the direct form.
const EDGE: u8 = 0x60;
/// A direct destination in a window of at most this many pages is its
/// first byte alone (`EDGE..=0xFE`: never the wide escape).
const EDGE_COMPACT: u64 = 0xFF - EDGE as u64;
/// A block shape byte with this bit set makes the block's mutator a move
/// back, when one can go back ([`block_move_back`]).
const BLOCK_BACK: u8 = 0x80;
/// An mremap shape byte of a same-length move with this bit set moves the
/// process's last moved range back ([`move_back`]), when there is one.
const BACK: u8 = 0x08;
/// A walker target byte below this one picks among the pages its block's
/// mutator took from the walker's process (moved or unmapped), when there
/// are any.
const RACED: u8 = 0xC0;
/// A mapped address whose byte is in `WRITTEN..SAME` is a written page.
const WRITTEN: u8 = 0x60;
/// A mapped address whose byte is in `UNWRITTEN..SAME` is a mapped page
/// not written yet (a fault in a mapping not faulted yet), when there is
/// one.
const UNWRITTEN: u8 = 0xA0;
/// An mmap address whose byte is below this one fills a gap ([`gaps`]);
/// from this one on it is in the direct form.
const GAP: u8 = 0x40;
/// A direct mmap address in a window of at most this many pages is its
/// first byte alone (`GAP..=0xFE`: never the wide escape).
const GAP_COMPACT: u64 = 0xFF - GAP as u64;
/// An mprotect PROT byte with both these bits set gives the range the
/// protection of a neighbouring mapping ([`Proc::neighbour_prot`]), when
/// there is one.
const NEIGHBOUR: u8 = 0x60;
/// An mprotect PROT byte with these bits set protects the whole mapping
/// at its address like the mapping after it ([`whole_to_next`]), when
/// there is one (else as for [`NEIGHBOUR`]).
const WHOLE: u8 = 0x70;
/// The same for a block's mutator: bit 4 alone (a walk racing a merge).
const WHOLE_IN_BLOCK: u8 = 0x10;
/// The protection a two-protection input ([`Params::alt_prot`]) uses
/// besides `rw`, by bits 2 and 3 of its swarm bytes' XOR.
const ALT_PROTS: [Prot; 4] = [Prot::Rwx, Prot::R, Prot::Rx, Prot::None];
/// In a two-protection input, a PROT byte with this bit set picks from
/// the usual table; without it, bit 0 picks `rw` or the input's other
/// protection.
const PROT_TABLE: u8 = 0x80;
/// A mapped address whose byte is in `SAME..DIRECT` is the previous
/// mapped-or-direct address, if this process maps it.
const SAME: u8 = 0xC0;
/// The bit of `k0 ^ k1 ^ m` that switches exec's ops on.
const EXEC_BIT: u8 = 0x01;
/// An exec-stack address whose byte is below this one goes at the top of
/// a hole of its process ([`holes`]); from this one on it is in the
/// direct form (as for an mmap's gap, [`GAP_COMPACT`]).
const HOLE: u8 = GAP;
/// Pages a [`PageSet`] tracks (the first ones of the sub-window).
const SET_PAGES: u64 = 256;

/// A set of op kinds (bit `i` is the `i`-th keyword of the op language).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpKinds(u32);

impl OpKinds {
    pub const MMAP: OpKinds = OpKinds(1 << 0);
    pub const MUNMAP: OpKinds = OpKinds(1 << 1);
    pub const MPROTECT: OpKinds = OpKinds(1 << 2);
    pub const MREMAP: OpKinds = OpKinds(1 << 3);
    pub const MADVISE: OpKinds = OpKinds(1 << 4);
    pub const FORK: OpKinds = OpKinds(1 << 5);
    pub const EXIT: OpKinds = OpKinds(1 << 6);
    pub const READ: OpKinds = OpKinds(1 << 7);
    pub const WRITE: OpKinds = OpKinds(1 << 8);
    pub const SWAPOUT: OpKinds = OpKinds(1 << 9);
    pub const RECLAIM: OpKinds = OpKinds(1 << 10);
    pub const MIGRATE: OpKinds = OpKinds(1 << 11);
    pub const FAIL_ALLOC: OpKinds = OpKinds(1 << 12);
    pub const DUMP: OpKinds = OpKinds(1 << 13);
    pub const REFERENCED: OpKinds = OpKinds(1 << 14);
    /// Concurrent blocks (version 2).
    pub const PAR: OpKinds = OpKinds(1 << 15);
    /// exec's temporary stack (version 2).
    pub const EXEC_STACK: OpKinds = OpKinds(1 << 16);
    /// exec's move of its temporary stack (version 2).
    pub const EXEC_SHIFT: OpKinds = OpKinds(1 << 17);
    pub const NONE: OpKinds = OpKinds(0);
    pub const ALL: OpKinds = OpKinds((1 << OP_KEYWORDS.len()) - 1);
    /// The kinds only the emulator can perform (blocks interleave rmap
    /// walks, which only the emulator has).
    pub const EMULATOR_ONLY: OpKinds = OpKinds(
        Self::SWAPOUT.0
            | Self::RECLAIM.0
            | Self::MIGRATE.0
            | Self::FAIL_ALLOC.0
            | Self::REFERENCED.0
            | Self::PAR.0
            | Self::EXEC_STACK.0
            | Self::EXEC_SHIFT.0,
    );
    /// The kinds a block's mutator may have: mmap .. exit, exec-shift.
    pub const MUTATORS: OpKinds = OpKinds(((1 << 7) - 1) | Self::EXEC_SHIFT.0);
    /// The rmap walks, a block's walkers.
    pub const WALKERS: OpKinds = OpKinds(Self::SWAPOUT.0 | Self::MIGRATE.0 | Self::REFERENCED.0);
    /// The kinds that name no process.
    pub const PIDLESS: OpKinds = OpKinds(Self::RECLAIM.0 | Self::FAIL_ALLOC.0 | Self::DUMP.0);

    /// The set with these bits.
    pub const fn from_bits_truncate(bits: u32) -> OpKinds {
        OpKinds(bits & Self::ALL.0)
    }
    pub const fn bits(self) -> u32 {
        self.0
    }
    pub const fn contains(self, other: OpKinds) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The kind of one op (never [`OpKinds::PAR`]: a block's ops have
    /// their own kinds).
    pub fn of(op: &Op) -> OpKinds {
        OpKinds(1 << op_index(op))
    }
    /// The kind with this keyword (`mmap`, ..., `dump`, `referenced`,
    /// `par`, `exec-stack`, `exec-shift`).
    pub fn from_keyword(keyword: &str) -> Option<OpKinds> {
        let i = OP_KEYWORDS.iter().position(|&k| k == keyword)?;
        Some(OpKinds(1 << i))
    }
    /// The keywords of the kinds in the set, in bit order.
    pub fn keywords(self) -> impl Iterator<Item = &'static str> {
        OP_KEYWORDS
            .into_iter()
            .enumerate()
            .filter(move |&(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, k)| k)
    }
}

impl BitOr for OpKinds {
    type Output = OpKinds;
    fn bitor(self, rhs: OpKinds) -> OpKinds {
        OpKinds(self.0 | rhs.0)
    }
}

impl BitAnd for OpKinds {
    type Output = OpKinds;
    fn bitand(self, rhs: OpKinds) -> OpKinds {
        OpKinds(self.0 & rhs.0)
    }
}

impl Sub for OpKinds {
    type Output = OpKinds;
    fn sub(self, rhs: OpKinds) -> OpKinds {
        OpKinds(self.0 & !rhs.0)
    }
}

/// A set of mapping kinds: anon, shared, file, sfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapKinds(u8);

impl MapKinds {
    pub const ANON: MapKinds = MapKinds(1 << 0);
    pub const SHARED: MapKinds = MapKinds(1 << 1);
    pub const FILE: MapKinds = MapKinds(1 << 2);
    pub const SFILE: MapKinds = MapKinds(1 << 3);
    pub const NONE: MapKinds = MapKinds(0);
    pub const ALL: MapKinds = MapKinds(0xF);

    /// The set with these bits (bits beyond the 4 kinds are dropped).
    pub const fn from_bits_truncate(bits: u8) -> MapKinds {
        MapKinds(bits & Self::ALL.0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, other: MapKinds) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The map kind of a `KIND`.
    pub fn of(kind: &Kind) -> MapKinds {
        MapKinds(1 << map_index(kind))
    }
}

impl BitOr for MapKinds {
    type Output = MapKinds;
    fn bitor(self, rhs: MapKinds) -> MapKinds {
        MapKinds(self.0 | rhs.0)
    }
}

impl BitAnd for MapKinds {
    type Output = MapKinds;
    fn bitand(self, rhs: MapKinds) -> MapKinds {
        MapKinds(self.0 & rhs.0)
    }
}

impl Sub for MapKinds {
    type Output = MapKinds;
    fn sub(self, rhs: MapKinds) -> MapKinds {
        MapKinds(self.0 & !rhs.0)
    }
}

/// What the decoder may generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeConfig {
    /// First page of the sub-window addresses are drawn from.
    pub window_start: u64,
    /// Pages in the sub-window (0 counts as 1).
    pub window_len: u64,
    /// Most ops in a stream.
    pub max_ops: usize,
    /// Longest length, in pages (0 counts as 1).
    pub max_len: u64,
    /// Op kinds that may occur.
    pub kinds: OpKinds,
    /// Map kinds `mmap` may use (empty means all).
    pub map_kinds: MapKinds,
    /// Most processes live at once (clamped to `1..=MAX_PROCS_LIMIT`).
    pub max_procs: usize,
}

impl Default for DecodeConfig {
    /// A small window so that ops collide; every op kind (`dump` rarely).
    fn default() -> Self {
        DecodeConfig {
            window_start: 0,
            window_len: 24,
            max_ops: 64,
            max_len: 8,
            kinds: OpKinds::ALL,
            map_kinds: MapKinds::ALL,
            max_procs: 8,
        }
    }
}

impl DecodeConfig {
    /// The default without the ops a live kernel cannot perform.
    pub fn live_kernel() -> Self {
        DecodeConfig {
            kinds: OpKinds::ALL - OpKinds::EMULATOR_ONLY,
            ..DecodeConfig::default()
        }
    }
}

/// Why a stream has no encoding under a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The stream has more ops than `max_ops`.
    TooManyOps { ops: usize, max_ops: usize },
    /// Op `index` is of a kind the config does not enable.
    KindDisabled { index: usize, op: Op },
    /// Op `index` maps a kind the config does not enable.
    MapKindDisabled { index: usize, op: Op },
    /// Op `index` names a process that is not live at that point.
    NotLive { index: usize, op: Op },
    /// Op `index` forks while `max_procs` processes are live (or no process
    /// number is left).
    TooManyProcesses {
        index: usize,
        op: Op,
        max_procs: usize,
    },
    /// Op `index` maps a file number past the last file.
    BadFile { index: usize, op: Op },
    /// Op `index` changes its process's temporary exec stack, which the
    /// decoder never does (only exec touches it until `exec-shift`).
    TouchesStack { index: usize, op: Op },

    /// The block whose actor `A` is op `first` has no encoding: the
    /// decoder makes blocks of one mutator (first or last), one or two
    /// walkers and an optional fault, with a `#HEX` schedule of at most 31
    /// bytes, once some page is mapped.
    BadBlock { first: usize, why: &'static str },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, op, why) = match self {
            EncodeError::TooManyOps { ops, max_ops } => {
                return write!(f, "the stream has {ops} ops, more than max_ops {max_ops}");
            }
            EncodeError::KindDisabled { index, op } => {
                (index, op, "its kind is not enabled".to_string())
            }
            EncodeError::MapKindDisabled { index, op } => {
                (index, op, "its map kind is not enabled".to_string())
            }
            EncodeError::NotLive { index, op } => {
                (index, op, "its process is not live".to_string())
            }
            EncodeError::TooManyProcesses {
                index,
                op,
                max_procs,
            } => (index, op, format!("{max_procs} processes are live already")),
            EncodeError::BadFile { index, op } => {
                (index, op, format!("files are 0..={}", NR_FILES - 1))
            }
            EncodeError::TouchesStack { index, op } => (
                index,
                op,
                "it changes its process's temporary stack before exec-shift".to_string(),
            ),

            EncodeError::BadBlock { first, why } => {
                return write!(f, "the block at op {first} cannot be encoded: {why}");
            }
        };
        write!(
            f,
            "op {index} (`{}`) cannot be encoded: {why}",
            print_op(op)
        )
    }
}

impl std::error::Error for EncodeError {}

/// The config with its degenerate values normalised.
#[derive(Clone, Copy)]
struct Params {
    window_start: u64,
    window_len: u64,
    max_len: u64,
    max_ops: usize,
    max_procs: usize,
    kinds: OpKinds,
    map_kinds: MapKinds,
}

impl Params {
    fn new(cfg: &DecodeConfig) -> Params {
        Params {
            window_start: cfg.window_start,
            // The window must not wrap around the address space.
            window_len: cfg.window_len.min(u64::MAX - cfg.window_start).max(1),
            max_len: cfg.max_len.max(1),
            max_ops: cfg.max_ops,
            max_procs: cfg.max_procs.clamp(1, MAX_PROCS_LIMIT),
            kinds: cfg.kinds & OpKinds::ALL,
            map_kinds: if cfg.map_kinds.is_empty() {
                MapKinds::ALL
            } else {
                cfg.map_kinds & MapKinds::ALL
            },
        }
    }

    /// Pages of the sub-window a [`PageSet`] tracks.
    fn set_pages(&self) -> u64 {
        self.window_len.min(SET_PAGES)
    }

    /// The [`PageSet`] bit of page `addr`, if it has one.
    fn bit(&self, addr: u64) -> Option<u64> {
        addr.checked_sub(self.window_start)
            .filter(|&i| i < self.set_pages())
    }

    /// Pages `[addr, addr + len)` as a range of [`PageSet`] bits (clipped).
    fn bits(&self, addr: u64, len: u64) -> (u64, u64) {
        let lim = self.set_pages();
        let lo = addr.saturating_sub(self.window_start).min(lim);
        let hi = addr
            .saturating_add(len)
            .saturating_sub(self.window_start)
            .min(lim);
        (lo, hi.max(lo))
    }

    /// The other protection of a two-protection input: when bit 1 of
    /// `k0 ^ k1 ^ m` is clear (half of the inputs; never for the header
    /// [`encode`] writes), mmap and mprotect choose between `rw` and this
    /// one ([`prot_of`]), so that protections coincide: a mapping made
    /// with another protection than its neighbour's, a range given that
    /// protection later (what lets a moved range merge into it).
    fn alt_prot(k0: u8, k1: u8, m: u8) -> Option<Prot> {
        let x = k0 ^ k1 ^ m;
        (x & 2 == 0).then(|| ALT_PROTS[usize::from((x >> 2) & 3)])
    }

    /// The kinds and map kinds an input's swarm header enables.
    fn swarm(&self, k0: u8, k1: u8, m: u8) -> (OpKinds, MapKinds) {
        let bits = u16::from_le_bytes([k0, k1]);
        // Without mmap nothing ever happens: it is always on.
        let mut on = OpKinds::from_bits_truncate(u32::from(bits & 0x3FFF)) | OpKinds::MMAP;
        let (k14, k15) = (bits & (1 << 14) != 0, bits & (1 << 15) != 0);
        let (m4, m5) = (m & (1 << 4) != 0, m & (1 << 5) != 0);
        for (bit, kinds) in [
            (k14 || m4, OpKinds::FORK),
            (k15 || m5, OpKinds::WRITE),
            (m & (1 << 6) != 0, OpKinds::READ),
            (m & (1 << 7) != 0, OpKinds::EXIT),
            (k14 && m4, OpKinds::PAR),
            (k15 && m5, OpKinds::REFERENCED),
            // exec's ops, in half of the inputs.
            (
                (k0 ^ k1 ^ m) & EXEC_BIT != 0,
                OpKinds::EXEC_STACK | OpKinds::EXEC_SHIFT,
            ),
        ] {
            if bit {
                on = on | kinds;
            }
        }
        let kinds = self.kinds & on;
        let maps = self.map_kinds & MapKinds::from_bits_truncate(m);
        let kinds = if kinds.is_empty() { self.kinds } else { kinds };
        (
            // A block needs a walker the config enables.
            if (self.kinds & OpKinds::WALKERS).is_empty() {
                kinds - OpKinds::PAR
            } else {
                kinds
            },
            if maps.is_empty() {
                self.map_kinds
            } else {
                maps
            },
        )
    }
}

/// A set of pages: bit `i` is page `window_start + i`, for the first
/// `min(window_len, 256)` pages of the sub-window.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct PageSet([u64; 4]);

impl PageSet {
    /// Bits `lo..hi` (`hi <= 256`) as a set.
    fn range(lo: u64, hi: u64) -> PageSet {
        let mut words = [0u64; 4];
        for (i, w) in (0u64..).zip(words.iter_mut()) {
            let (a, b) = (lo.max(64 * i), hi.min(64 * i + 64));
            if a < b {
                let ones = u64::MAX >> (64 - (b - a));
                *w = ones << (a - 64 * i);
            }
        }
        PageSet(words)
    }

    fn is_empty(&self) -> bool {
        let [a, b, c, d] = self.0;
        a | b | c | d == 0
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    fn contains(&self, i: u64) -> bool {
        i < SET_PAGES && (self.0[(i / 64) as usize] >> (i % 64)) & 1 != 0
    }

    fn intersects(&self, other: &PageSet) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    fn insert(&mut self, other: &PageSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    fn and(&mut self, other: &PageSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    fn remove(&mut self, other: &PageSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
    }

    /// The `k`-th bit set, in ascending order (`k < count()`).
    fn nth(&self, mut k: u64) -> u64 {
        for (i, &w) in (0u64..).zip(&self.0) {
            let c = u64::from(w.count_ones());
            if k < c {
                // k < c <= 64.
                return 64 * i + u64::from(nth_bit(w, k as u32));
            }
            k -= c;
        }
        0
    }

    /// How many consecutive bits are set from bit `i` on.
    fn run_from(&self, mut i: u64) -> u64 {
        let mut n = 0;
        while i < SET_PAGES {
            let bit = i % 64;
            // Zeros shift in from the top: at most `64 - bit` ones.
            let ones = u64::from((self.0[(i / 64) as usize] >> bit).trailing_ones());
            n += ones;
            if ones < 64 - bit {
                break;
            }
            i += ones;
        }
        n
    }
}

/// What the decoder remembers of a live process: a cheap approximation of
/// its address space, a generation aid only (it never needs to be exact).
#[derive(Clone, Copy, Default)]
struct Proc {
    /// Pages it has mapped.
    mapped: PageSet,
    /// Pages it (or an ancestor before the fork) has written since they
    /// were mapped (a subset of `mapped`).
    written: PageSet,
    /// Pages of `written` it wrote itself since it was created (the slot
    /// aim's victims, [`aim_slots`]).
    own: PageSet,
    /// Its last mremap move as [`PageSet`] bits: (source, destination,
    /// pages), for the move back ([`BACK`]).
    moved: Option<(u16, u16, u16)>,
    /// The protection of each mapped page, as bit planes of its index in
    /// [`Prot::ALL`] (meaningless outside `mapped`).
    prot: [PageSet; 3],
    /// Its temporary exec stack as [`PageSet`] bits `[lo, hi)`, from an
    /// `exec-stack` until the `exec-shift` that sets it up.
    stack: Option<(u16, u16)>,
    /// ANON: the pages of mappings a write gave an anon_vma
    /// ([`aim_vmalock::track`]; the per-VMA-lock aims).
    anon: PageSet,
}

impl Proc {
    /// Gives `pages` the protection `prot`.
    fn set_prot(&mut self, pages: &PageSet, prot: Prot) {
        let i = Prot::ALL.iter().position(|&q| q == prot).unwrap_or(0);
        for (k, plane) in self.prot.iter_mut().enumerate() {
            if i & (1 << k) != 0 {
                plane.insert(pages);
            } else {
                plane.remove(pages);
            }
        }
    }

    /// The protection of mapped page `bit`, `None` if it is not mapped.
    fn prot_at(&self, bit: u64) -> Option<Prot> {
        if !self.mapped.contains(bit) {
            return None;
        }
        let i = (0..3).fold(0, |i, k| i | usize::from(self.prot[k].contains(bit)) << k);
        Prot::ALL.get(i).copied()
    }

    /// The mapping as the protections tell it: the run of mapped pages
    /// around `bit` with its protection, as bits `[lo, hi)`.
    fn mapping_at(&self, bit: u64) -> Option<(u64, u64)> {
        let prot = self.prot_at(bit)?;
        let same = |i: u64| self.prot_at(i) == Some(prot);
        let lo = (0..bit).rev().take_while(|&i| same(i)).count() as u64;
        let hi = (bit..SET_PAGES).take_while(|&i| same(i)).count() as u64;
        Some((bit - lo, bit + hi))
    }

    /// The pages of the mapping that starts at bit `hi` ([`Proc::mapping_at`]),
    /// none when `hi` is not mapped.
    fn next_mapping(&self, hi: u64) -> PageSet {
        self.mapping_at(hi)
            .map_or(PageSet::default(), |(_, end)| PageSet::range(hi, end))
    }

    /// The free pages right below the temporary stack: how far an
    /// `exec-shift` can move it (0 without a stack).
    fn room_below(&self) -> u64 {
        let Some((lo, _)) = self.stack else {
            return 0;
        };
        let lo = u64::from(lo);
        (0..lo)
            .rev()
            .take_while(|&i| !self.mapped.contains(i))
            .count() as u64
    }

    /// The protection of a mapping next to the range `[lo, hi)` (bits):
    /// when the range lies in the destination of the last move, of a page
    /// right next to that move's source (the mapping it returns to);
    /// otherwise of the page right below the range, else right above it.
    fn neighbour_prot(&self, lo: u64, hi: u64) -> Option<Prot> {
        let (from, to, len) = self.moved.map_or((0, 0, 0), |(f, t, l)| {
            (u64::from(f), u64::from(t), u64::from(l))
        });
        let (below, above) = if len > 0 && lo >= to && hi <= to + len {
            (from.checked_sub(1), from + len)
        } else {
            (lo.checked_sub(1), hi)
        };
        below
            .and_then(|b| self.prot_at(b))
            .or_else(|| self.prot_at(above))
    }
}

/// The processes live at a point of the stream, in creation order, and
/// what the decoder remembers of them.
struct Live {
    pids: [u32; MAX_PROCS_LIMIT],
    procs: [Proc; MAX_PROCS_LIMIT],
    len: usize,
    next: u32,
    /// The address of the last op with a mapped-or-direct address.
    last: Option<u64>,
    /// The other protection of a two-protection input
    /// ([`Params::alt_prot`]).
    alt: Option<Prot>,
    /// Bit `i`: slot `i` has something mapped.
    mapping: u64,
    /// Bit `i`: slot `i` has something written.
    writing: u64,
    /// Bit `i`: slot `i` has a temporary exec stack.
    stacking: u64,
    /// The slot aim is on ([`aim_slots::SLOTS_BIT`]).
    slots: bool,
    /// The merge aim is on ([`aim_merge::MERGE_BIT`]).
    merge_aim: bool,
}

/// `mask` without bit `i`, the bits above it moved down by one.
fn remove_bit(mask: u64, i: usize) -> u64 {
    let below = (1u64 << i) - 1;
    (mask & below) | ((mask >> 1) & !below)
}

/// The index of the `k`-th bit set in `w` (`k < w.count_ones()`).
fn nth_bit(mut w: u64, k: u32) -> u32 {
    for _ in 0..k {
        w &= w - 1;
    }
    w.trailing_zeros()
}

impl Live {
    fn new() -> Live {
        Live {
            pids: [0; MAX_PROCS_LIMIT],
            procs: [Proc::default(); MAX_PROCS_LIMIT],
            len: 1,
            next: 1,
            last: None,
            alt: None,
            mapping: 0,
            writing: 0,
            stacking: 0,
            slots: false,
            merge_aim: false,
        }
    }

    /// Updates the masks for slot `i`.
    fn refresh(&mut self, i: usize) {
        let q = &self.procs[i];
        let bit = 1u64 << i;
        self.mapping = (self.mapping & !bit) | if q.mapped.is_empty() { 0 } else { bit };
        self.writing = (self.writing & !bit) | if q.written.is_empty() { 0 } else { bit };
        self.stacking = (self.stacking & !bit) | if q.stack.is_none() { 0 } else { bit };
    }

    fn as_slice(&self) -> &[u32] {
        &self.pids[..self.len]
    }

    fn can_fork(&self, max_procs: usize) -> bool {
        self.len < max_procs && self.next < u32::MAX
    }

    /// The kinds allowed for the next op.
    fn allowed(&self, enabled: OpKinds, max_procs: usize) -> OpKinds {
        let mut allowed = enabled;
        if !self.can_fork(max_procs) {
            allowed = allowed - OpKinds::FORK;
        }
        if self.len <= 1 {
            // The last process's exit has its own bytes, [`LAST_EXIT`].
            allowed = allowed - OpKinds::EXIT;
        }
        if self.len == 0 {
            allowed = allowed & OpKinds::PIDLESS;
        }
        if self.mapping == 0 {
            // A block's walkers aim at mapped pages.
            allowed = allowed - OpKinds::PAR;
        }
        allowed
    }

    /// The row of [`OP_WEIGHTS`] for the next op.
    fn weights(&self) -> &'static [u8; 18] {
        // exec-shift moves a temporary stack: more often while there is one.
        let table = if self.stacking == 0 {
            &OP_WEIGHTS
        } else {
            &STACK_WEIGHTS
        };
        let row = if self.mapping == 0 {
            0
        } else if self.writing == 0 {
            1
        } else {
            match self.len {
                0 | 1 => 2,
                2 | 3 => 3,
                4 | 5 => 4,
                _ => 5,
            }
        };
        &table[row]
    }

    /// Whether the kind bytes [`LAST_EXIT`] twice are the last process's
    /// exit.
    fn last_exit(&self, enabled: OpKinds) -> bool {
        self.len == 1 && enabled.contains(OpKinds::EXIT)
    }

    /// The slot of the process a selector byte picks (there must be one);
    /// `mapped` for the kinds with a mapped-or-direct address.
    fn pick(&self, s: u8, mapped: bool) -> usize {
        if mapped && (PICK_ANY..PICK_NEWEST).contains(&s) {
            return usize::from(s - PICK_ANY) % self.len;
        }
        if !mapped || self.mapping == 0 {
            return if s >= PICK_NEWEST {
                self.len - 1
            } else {
                usize::from(s) % self.len
            };
        }
        if s >= PICK_NEWEST {
            63 - self.mapping.leading_zeros() as usize
        } else {
            nth_bit(self.mapping, u32::from(s) % self.mapping.count_ones()) as usize
        }
    }

    /// The slot an `exec-shift` selector byte picks: below [`PICK_ANY`],
    /// the `(s % k)`-th of the `k` processes with a temporary stack, if
    /// there are any; otherwise as [`Live::pick`].
    fn pick_stack(&self, s: u8) -> usize {
        if s < PICK_ANY && self.stacking != 0 {
            return nth_bit(self.stacking, u32::from(s) % self.stacking.count_ones()) as usize;
        }
        self.pick(s, true)
    }

    /// A selector byte that [`Live::pick_stack`] maps to `pid`, if it is
    /// live.
    fn stack_selector(&self, pid: Pid) -> Option<u8> {
        let i = self.slot(pid)?;
        let s = if self.stacking & (1 << i) != 0 {
            (self.stacking & ((1 << i) - 1)).count_ones()
        } else {
            u32::from(PICK_ANY) + i as u32
        };
        u8::try_from(s).ok()
    }

    fn slot(&self, pid: Pid) -> Option<usize> {
        self.as_slice().iter().position(|&p| p == pid.0)
    }

    /// A selector byte that picks `pid`, if it is live (an inverse of
    /// [`Live::pick`]).
    fn selector(&self, pid: Pid, mapped: bool) -> Option<u8> {
        let i = self.slot(pid)?;
        let s = if !mapped {
            i as u32
        } else if self.mapping & (1 << i) == 0 {
            u32::from(PICK_ANY) + i as u32
        } else {
            (self.mapping & ((1 << i) - 1)).count_ones()
        };
        u8::try_from(s).ok()
    }

    /// Applies an op: forks and exits change the live set, and the ops
    /// that map, unmap, write or zap pages change the page sets, roughly as
    /// the kernel would (an mmap that would fail with `EEXIST`, an mremap
    /// of an unmapped page and in-place growth into mapped pages change
    /// nothing; the written pages of a moved range are written at its
    /// destination).
    fn apply(&mut self, op: &Op, p: &Params) {
        let Some(pid) = op.pid() else {
            return;
        };
        let Some(i) = self.slot(pid) else {
            return;
        };
        if let Some(addr) = mapped_addr(op) {
            self.last = Some(addr);
        }
        // After a move, the range is at its destination.
        if let Op::Mremap { to: Some(t), .. } = *op {
            self.last = Some(t.new);
        }
        match *op {
            Op::Fork { .. } => {
                self.pids[self.len] = self.next;
                self.procs[self.len] = self.procs[i];
                self.procs[self.len].own = PageSet::default();
                self.refresh(self.len);
                self.len += 1;
                self.next += 1;
                return;
            }
            Op::Exit { .. } => {
                self.pids.copy_within(i + 1..self.len, i);
                self.procs.copy_within(i + 1..self.len, i);
                self.mapping = remove_bit(self.mapping, i);
                self.writing = remove_bit(self.writing, i);
                self.stacking = remove_bit(self.stacking, i);
                self.len -= 1;
                return;
            }
            _ => {}
        }
        aim_vmalock::track(&mut self.procs[i], op, p);
        let q = &mut self.procs[i];
        let range = |addr, len| {
            let (lo, hi) = p.bits(addr, len);
            PageSet::range(lo, hi)
        };
        match *op {
            Op::Mmap {
                addr,
                len,
                replace,
                prot,
                ..
            } => {
                let pages = range(addr, len);
                if replace || !q.mapped.intersects(&pages) {
                    q.mapped.insert(&pages);
                    q.written.remove(&pages);
                    q.set_prot(&pages, prot);
                }
            }
            Op::Munmap { addr, len, .. } => {
                let pages = range(addr, len);
                q.mapped.remove(&pages);
                q.written.remove(&pages);
            }
            Op::Mprotect {
                addr, len, prot, ..
            } => {
                let mut pages = range(addr, len);
                pages.and(&q.mapped);
                q.set_prot(&pages, prot);
            }
            Op::Madvise {
                addr,
                len,
                advice: Advice::DontNeed,
                ..
            } => q.written.remove(&range(addr, len)),
            Op::Write { addr, .. } => {
                if let Some(b) = p.bit(addr).filter(|&b| q.mapped.contains(b)) {
                    q.written.insert(&PageSet::range(b, b + 1));
                    q.own.insert(&PageSet::range(b, b + 1));
                }
            }
            Op::Mremap {
                old,
                old_len,
                new_len,
                to,
                ..
            } => match to {
                _ if !p.bit(old).is_some_and(|b| q.mapped.contains(b)) => {}
                None if new_len < old_len => {
                    let tail = range(old.saturating_add(new_len), old_len - new_len);
                    q.mapped.remove(&tail);
                    q.written.remove(&tail);
                }
                None => {
                    let grown = range(old.saturating_add(old_len), new_len - old_len);
                    if !q.mapped.intersects(&grown) {
                        let prot = p.bit(old).and_then(|b| q.prot_at(b)).unwrap_or(Prot::Rw);
                        q.mapped.insert(&grown);
                        q.set_prot(&grown, prot);
                    }
                }
                Some(t) => {
                    let source = range(old, old_len);
                    // The pages move with the range: what was written
                    // there is present at the destination.
                    let mut moved = PageSet::default();
                    for i in 0..old_len.min(new_len).min(SET_PAGES) {
                        let from = old.saturating_add(i);
                        let to = t.new.saturating_add(i);
                        if let (Some(a), Some(b)) = (p.bit(from), p.bit(to))
                            && q.written.contains(a)
                        {
                            moved.insert(&PageSet::range(b, b + 1));
                        }
                    }
                    let (lo, hi) = p.bits(old, old_len.min(new_len));
                    q.moved = match (p.bit(old), p.bit(t.new)) {
                        (Some(a), Some(b)) if hi > lo && b + (hi - lo) <= p.set_pages() => {
                            // Bits are below 256.
                            Some((a as u16, b as u16, (hi - lo) as u16))
                        }
                        _ => None,
                    };
                    let prot = p.bit(old).and_then(|b| q.prot_at(b)).unwrap_or(Prot::Rw);
                    if !t.dontunmap {
                        q.mapped.remove(&source);
                    }
                    q.written.remove(&source);
                    let dest = range(t.new, new_len);
                    q.mapped.insert(&dest);
                    q.set_prot(&dest, prot);
                    q.written.remove(&dest);
                    q.written.insert(&moved);
                }
            },
            Op::ExecStack { addr, len, .. } => {
                let pages = range(addr, len);
                // Recorded even where the memory thinks the range mapped (it
                // may be wrong): ops that would change it are dropped.
                if q.stack.is_none() && len > 0 {
                    let (lo, hi) = p.bits(addr, len);
                    q.mapped.insert(&pages);
                    q.written.remove(&pages);
                    q.set_prot(&pages, Prot::Rw);
                    // Bits are below 256.
                    q.stack = Some((lo as u16, hi as u16));
                }
            }
            Op::ExecShift { shift, .. } => {
                let Some((lo, hi)) = q.stack else {
                    return;
                };
                let (lo, hi) = (u64::from(lo), u64::from(hi));
                if shift > 0 {
                    // `EINVAL` past the window's start, `EFAULT` when
                    // something is mapped below: nothing moves.
                    if shift > lo || q.mapped.intersects(&PageSet::range(lo - shift, lo)) {
                        return;
                    }
                    let (from, to) = (
                        PageSet::range(lo, hi),
                        PageSet::range(lo - shift, hi - shift),
                    );
                    let mut written = PageSet::default();
                    for b in lo..hi {
                        if q.written.contains(b) {
                            written.insert(&PageSet::range(b - shift, b - shift + 1));
                        }
                    }
                    q.mapped.remove(&from);
                    q.written.remove(&from);
                    q.mapped.insert(&to);
                    q.written.insert(&written);
                    q.set_prot(&to, Prot::Rw);
                }
                q.stack = None;
            }
            _ => return,
        }
        let written = q.written;
        q.own.and(&written);
        self.refresh(i);
    }
}

/// The move back of `q`'s last mremap move ([`BACK`]), when the shape
/// byte `sh` asks for it and the moved pages are still mapped where they
/// went: the whole moved range returns to where it came from, next to the
/// pages it was split from (pgoff unchanged), where `copy_vma` merges it.
fn move_back(pid: Pid, sh: u8, p: &Params, q: &Proc, in_block: bool) -> Option<Op> {
    let dontunmap = match sh % 8 {
        3 | 7 => false,
        4 => true,
        // A block's mutator: every move shape may move back.
        5 if in_block => false,
        6 if in_block => true,
        _ => return None,
    };
    if sh & BACK == 0 {
        return None;
    }
    let (from, to, len) = q.moved?;
    let (from, to, len) = (u64::from(from), u64::from(to), u64::from(len));
    if q.mapped.run_from(to) < len {
        return None;
    }
    Some(Op::Mremap {
        pid,
        old: p.window_start + to,
        old_len: len,
        new_len: len,
        to: Some(MremapTo {
            new: p.window_start + from,
            dontunmap,
        }),
    })
}

/// A block's mutator when its shape byte `sh` has [`BLOCK_BACK`] set, `mremap`
/// is enabled and a live process's last move can go back ([`move_back`]):
/// the newest such process's move back (its bytes: none). The move back
/// is what B08 and B12 race a migration with; a block with a move back
/// among its other mutators is rare otherwise.
fn block_move_back(sh: u8, kinds: OpKinds, p: &Params, live: &Live) -> Option<Op> {
    if sh & BLOCK_BACK == 0 || !kinds.contains(OpKinds::MREMAP) {
        return None;
    }
    (0..live.len).rev().find_map(|i| {
        move_back(Pid(live.pids[i]), 3 | BACK, p, &live.procs[i], true)
            .filter(|op| !touches_stack(op, p, live))
    })
}

/// The mprotect of the mapping at `addr` ([`Proc::mapping_at`]; its last
/// `max_len` pages when it is longer) to the protection of the mapping
/// right after it, when that one is mapped with another protection: the
/// two merge (`vma_merge`'s case 8 for a whole mapping, or `next` grows
/// down over its tail), the shape B21 races a migration of `next`'s pages
/// with.
fn whole_to_next(pid: Pid, addr: u64, p: &Params, q: &Proc) -> Option<Op> {
    let (lo, hi) = q.mapping_at(p.bit(addr)?)?;
    let prot = q.prot_at(hi)?;
    let lo = lo.max(hi.saturating_sub(p.max_len));
    Some(Op::Mprotect {
        pid,
        addr: p.window_start + lo,
        len: hi - lo,
        prot,
    })
}

/// Whether `op` would split, move, unmap or replace pages of its process's
/// temporary stack (STACK in the decoder's memory): nothing but exec
/// touches that VMA between `__bprm_mm_init` and `setup_arg_pages` (the
/// new mm is not yet any task's), so the decoder drops such ops.
fn touches_stack(op: &Op, p: &Params, live: &Live) -> bool {
    if live.stacking == 0 {
        return false;
    }
    let Some(i) = op.pid().and_then(|pid| live.slot(pid)) else {
        return false;
    };
    let Some((lo, hi)) = live.procs[i].stack else {
        return false;
    };
    let stack = PageSet::range(u64::from(lo), u64::from(hi));
    let hits = |addr: u64, len: u64| {
        let (a, b) = p.bits(addr, len);
        PageSet::range(a, b).intersects(&stack)
    };
    match *op {
        Op::Mmap {
            addr,
            len,
            replace: true,
            ..
        }
        | Op::Munmap { addr, len, .. }
        | Op::Mprotect { addr, len, .. }
        | Op::Madvise { addr, len, .. } => hits(addr, len),
        Op::Mremap {
            old,
            old_len,
            new_len,
            to,
            ..
        } => hits(old, old_len) || to.is_some_and(|t| hits(t.new, new_len)),
        _ => false,
    }
}

/// The mapped-or-direct address of an op, if it has one.
fn mapped_addr(op: &Op) -> Option<u64> {
    match *op {
        Op::Munmap { addr, .. }
        | Op::Mprotect { addr, .. }
        | Op::Madvise { addr, .. }
        | Op::Read { addr, .. }
        | Op::Write { addr, .. }
        | Op::Swapout { addr, .. }
        | Op::Migrate { addr, .. }
        | Op::Referenced { addr, .. }
        | Op::Mremap { old: addr, .. } => Some(addr),
        _ => None,
    }
}

/// Whether ops of kind `index` have a mapped-or-direct address.
fn has_mapped_addr(index: usize) -> bool {
    matches!(index, 1..=4 | 7..=9 | 11 | 14)
}

fn op_index(op: &Op) -> usize {
    op.kind_index()
}

fn map_index(kind: &Kind) -> usize {
    match kind {
        Kind::Anon => 0,
        Kind::Shared => 1,
        Kind::File { .. } => 2,
        Kind::SFile { .. } => 3,
    }
}

/// Picks the index of an allowed entry by weight.
fn pick_weighted(b: u8, allowed: u32, weights: &[u8]) -> Option<usize> {
    let allowed = allowed & ((1 << weights.len()) - 1);
    let mut total = 0;
    let mut m = allowed;
    while m != 0 {
        total += u32::from(weights[m.trailing_zeros() as usize]);
        m &= m - 1;
    }
    if total == 0 {
        return None;
    }
    let mut r = u32::from(b) % total;
    let mut m = allowed;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        let w = u32::from(weights[i]);
        if r < w {
            return Some(i);
        }
        r -= w;
        m &= m - 1;
    }
    None
}

/// The smallest byte that [`pick_weighted`] maps to `index`.
fn weighted_byte(index: usize, allowed: u32, weights: &[u8]) -> u8 {
    let start: u32 = (0..index)
        .filter(|&i| allowed & (1 << i) != 0)
        .map(|i| u32::from(weights[i]))
        .sum();
    // Weights sum to at most 255.
    start as u8
}

/// A value field as read: reduced into its range, or raw from an escape.
enum Field {
    Narrow(u64),
    Wide(u64),
}

struct Reader<'a> {
    bytes: &'a [u8],
    wide: bool,
    /// Set when an mprotect's PROT byte made it a merge with the mapping
    /// after it ([`whole_to_next`]).
    merged: bool,
    /// The per-VMA-lock aims' state within a block ([`aim_vmalock`]).
    aim: aim_vmalock::Aim,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    /// Unsigned LEB128, at most 10 bytes (bits past 64 are dropped).
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F).checked_shl(7 * i).unwrap_or(0);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(v)
    }

    /// A value field: `range(n)` of the format, or an escaped raw value.
    fn field(&mut self, n: u64) -> Option<Field> {
        let b0 = self.byte()?;
        if self.wide && b0 == ESCAPE {
            return self.varint().map(Field::Wide);
        }
        if n <= 256 {
            return Some(Field::Narrow(u64::from(b0) % n));
        }
        let b1 = self.byte()?;
        Some(Field::Narrow(u64::from(u16::from_le_bytes([b0, b1])) % n))
    }

    fn addr(&mut self, p: &Params) -> Option<u64> {
        Some(match self.field(p.window_len)? {
            Field::Narrow(v) => p.window_start + v,
            Field::Wide(v) => v,
        })
    }

    /// A length, an offset or a count: `base + range(n)`.
    fn offset_field(&mut self, base: u64, n: u64) -> Option<u64> {
        Some(match self.field(n)? {
            Field::Narrow(v) => base + v,
            Field::Wide(v) => v,
        })
    }

    fn len(&mut self, p: &Params) -> Option<u64> {
        self.offset_field(1, p.max_len)
    }

    /// A tracked field: with `choices`, a first byte `b` below [`DIRECT`]
    /// picks a choice (`Ok(b)`); otherwise the direct form, a value field
    /// of `range(n)` (`Err`). With choices, the direct form of a range of
    /// at most [`COMPACT`] values is its first byte alone.
    fn tracked(&mut self, choices: bool, n: u64) -> Option<Result<u8, Field>> {
        if !choices {
            return self.field(n).map(Err);
        }
        let b0 = self.byte()?;
        if self.wide && b0 == ESCAPE {
            return self.varint().map(|v| Err(Field::Wide(v)));
        }
        if b0 < DIRECT {
            return Some(Ok(b0));
        }
        if n <= COMPACT {
            return Some(Err(Field::Narrow(u64::from(b0 - DIRECT) % n)));
        }
        self.field(n).map(Err)
    }

    /// A mapped-or-direct address: a page the process maps (see
    /// [`mapped_page`]), or ADDR.
    fn mapped(&mut self, p: &Params, q: &Proc, last: Option<u64>) -> Option<u64> {
        Some(match self.tracked(!q.mapped.is_empty(), p.window_len)? {
            Ok(b) => mapped_page(b, p, q, last),
            Err(Field::Narrow(v)) => p.window_start + v,
            Err(Field::Wide(v)) => v,
        })
    }

    /// A block fault's mapped-or-direct address: after a mutator the
    /// per-VMA-lock aims made ([`aim_vmalock::fault_page`]), a choice
    /// below `0xC0` picks among the pages it races on.
    fn fault_addr(&mut self, p: &Params, q: &Proc, pid: Pid, last: Option<u64>) -> Option<u64> {
        Some(match self.tracked(!q.mapped.is_empty(), p.window_len)? {
            Ok(b) => aim_vmalock::fault_page(&self.aim, pid, b, p, q)
                .unwrap_or_else(|| mapped_page(b, p, q, last)),
            Err(Field::Narrow(v)) => p.window_start + v,
            Err(Field::Wide(v)) => v,
        })
    }

    /// A walker's target: like a mapped-or-direct address, but a choice
    /// picks among the pages `q` has written (probably present anonymous
    /// pages) or had written before the block's mutator ran (`before`: the
    /// pages a mutator first in the block moves, unmaps or protects, which
    /// the walk races), when there are any, otherwise among its mapped
    /// pages. A choice below [`RACED`] picks among the pages of `before`
    /// that `q` no longer has written (those the mutator moved or
    /// unmapped) and the pages `next` (those of the mapping after an
    /// mprotect mutator's range, which a merge extends or takes over), when
    /// there are any.
    fn target(&mut self, p: &Params, q: &Proc, before: &PageSet, next: &PageSet) -> Option<u64> {
        Some(match self.tracked(!q.mapped.is_empty(), p.window_len)? {
            Ok(b) => {
                let mut raced = *before;
                raced.remove(&q.written);
                raced.insert(next);
                if b < RACED && !raced.is_empty() {
                    return Some(p.window_start + raced.nth(u64::from(b) % raced.count()));
                }
                let mut written = q.written;
                written.insert(before);
                let set = if written.is_empty() {
                    &q.mapped
                } else {
                    &written
                };
                p.window_start + set.nth(u64::from(b) % set.count())
            }
            Err(Field::Narrow(v)) => p.window_start + v,
            Err(Field::Wide(v)) => v,
        })
    }

    /// An mremap destination of `len` pages: a byte below [`EDGE`] picks
    /// one of the [`edges`] of the mapped pages `set` (a move next to a
    /// mapping, where `copy_vma` may merge), from [`EDGE`] on the direct
    /// form (ADDR, its first byte alone when the window has at most
    /// [`EDGE_COMPACT`] pages). Without edges, ADDR.
    fn dest(&mut self, p: &Params, set: &PageSet, len: u64) -> Option<u64> {
        let edges = edges(p, set, len);
        if edges.is_empty() {
            return self.addr(p);
        }
        let b0 = self.byte()?;
        if self.wide && b0 == ESCAPE {
            return self.varint();
        }
        if b0 < EDGE {
            return Some(p.window_start + edges.nth(u64::from(b0) % edges.count()));
        }
        if p.window_len <= EDGE_COMPACT {
            return Some(p.window_start + u64::from(b0 - EDGE) % p.window_len);
        }
        self.addr(p)
    }

    /// An mmap address in the mapped pages `set`'s process: a byte below
    /// [`GAP`] picks one of its [`gaps`] (the page right after a run of
    /// mapped pages), with the length of the gap up to the next mapped
    /// page (`None` when none is above), which the mmap fills and does not
    /// overrun; from [`GAP`] on the direct form (ADDR, its first byte alone
    /// when the window has at most [`GAP_COMPACT`] pages). Without gaps,
    /// ADDR.
    fn gap_addr(&mut self, p: &Params, set: &PageSet) -> Option<(u64, Option<u64>)> {
        let gaps = gaps(p, set);
        if gaps.is_empty() {
            return Some((self.addr(p)?, None));
        }
        let b0 = self.byte()?;
        if self.wide && b0 == ESCAPE {
            return Some((self.varint()?, None));
        }
        if b0 < GAP {
            let g = gaps.nth(u64::from(b0) % gaps.count());
            let room = (g..p.set_pages()).find(|&i| set.contains(i)).map(|i| i - g);
            return Some((p.window_start + g, room));
        }
        if p.window_len <= GAP_COMPACT {
            return Some((p.window_start + u64::from(b0 - GAP) % p.window_len, None));
        }
        Some((self.addr(p)?, None))
    }

    /// An exec-stack address in the mapped pages `set`'s process: a byte
    /// below [`HOLE`] picks one of its [`holes`] (a run of free pages),
    /// with the hole's first page and size, at whose top the stack goes
    /// (room left below it for the exec-shift); from [`HOLE`] on the direct
    /// form, as for [`Reader::gap_addr`]. Without holes, ADDR.
    fn hole_addr(&mut self, p: &Params, set: &PageSet) -> Option<(u64, Option<(u64, u64)>)> {
        let holes = holes(p, set);
        if holes.is_empty() {
            return Some((self.addr(p)?, None));
        }
        let b0 = self.byte()?;
        if self.wide && b0 == ESCAPE {
            return Some((self.varint()?, None));
        }
        if b0 < HOLE {
            let h = holes.nth(u64::from(b0) % holes.count());
            let end = (h..p.set_pages())
                .find(|&i| set.contains(i))
                .unwrap_or(p.set_pages());
            return Some((p.window_start + h, Some((h, end - h))));
        }
        if p.window_len <= GAP_COMPACT {
            return Some((p.window_start + u64::from(b0 - HOLE) % p.window_len, None));
        }
        Some((self.addr(p)?, None))
    }

    /// A run-or-direct length: one within the run of mapped pages at
    /// `addr` (see [`run_choices`]), or LEN.
    fn run_len(&mut self, p: &Params, set: &PageSet, addr: u64) -> Option<u64> {
        let choices = run_choices(p, set, addr);
        Some(match self.tracked(choices > 0, p.max_len)? {
            Ok(b) => 1 + u64::from(b) % choices,
            Err(Field::Narrow(v)) => 1 + v,
            Err(Field::Wide(v)) => v,
        })
    }

    fn value(&mut self) -> Option<u64> {
        let b = self.byte()?;
        if self.wide && b == ESCAPE {
            return self.varint();
        }
        Some(value_of(b))
    }
}

/// The pages right after each run of `set` (within the tracked pages): where
/// an mmap sits next to a mapping, filling the gap above it.
fn gaps(p: &Params, set: &PageSet) -> PageSet {
    let mut out = PageSet::default();
    for i in 1..p.set_pages() {
        if set.contains(i - 1) && !set.contains(i) {
            out.insert(&PageSet::range(i, i + 1));
        }
    }
    out
}

/// The first page of each run of pages not in `set` (within the tracked
/// pages): where exec's temporary stack goes, with room below it to move
/// down.
fn holes(p: &Params, set: &PageSet) -> PageSet {
    let mut out = PageSet::default();
    for i in 0..p.set_pages() {
        if !set.contains(i) && (i == 0 || set.contains(i - 1)) {
            out.insert(&PageSet::range(i, i + 1));
        }
    }
    out
}

/// The protection a PROT byte `pr` gives from `table` ([`PROTS`], indexed
/// by its low 4 bits, or [`MPROTECT_PROTS`], by its low 3): in a
/// two-protection input (`alt`, [`Params::alt_prot`]) without
/// [`PROT_TABLE`] set, `rw` or `alt` by bit 0.
fn prot_of(pr: u8, table: &[Prot], alt: Option<Prot>) -> Prot {
    match alt {
        Some(a) if pr & PROT_TABLE == 0 => [Prot::Rw, a][usize::from(pr & 1)],
        _ => table[usize::from(pr) % table.len()],
    }
}

/// The starts of a `len`-page range that would sit right next to a run of
/// `set` without overlapping it: the page after each run, and `len` pages
/// before each run's first page (within the tracked pages).
fn edges(p: &Params, set: &PageSet, len: u64) -> PageSet {
    let mut out = PageSet::default();
    if set.is_empty() {
        return out;
    }
    let n = p.set_pages();
    for i in 0..n {
        let here = set.contains(i);
        let prev = i > 0 && set.contains(i - 1);
        if prev && !here {
            out.insert(&PageSet::range(i, i + 1));
        }
        if here && !prev && i >= len {
            let s = i - len;
            // No mapped page in between.
            if !set.intersects(&PageSet::range(s, i)) {
                out.insert(&PageSet::range(s, s + 1));
            }
        }
    }
    out
}

/// The lengths a run-or-direct length can choose from: `1..=` the run of
/// consecutive pages of `set` from `addr` on, at most `max_len`.
fn run_choices(p: &Params, set: &PageSet, addr: u64) -> u64 {
    p.bit(addr).map_or(0, |b| set.run_from(b)).min(p.max_len)
}

/// The page a mapped address byte `b < DIRECT` picks, `q` mapping
/// something: below [`WRITTEN`], the `(b % count)`-th mapped page; below
/// [`SAME`], the `(b % count)`-th page of those it has written (if any);
/// otherwise the `last` address (if it maps it). A form that does not
/// apply falls back to the first.
fn mapped_page(b: u8, p: &Params, q: &Proc, last: Option<u64>) -> u64 {
    let k = u64::from(b);
    if b >= SAME {
        if let Some(last) = last.filter(|&a| p.bit(a).is_some_and(|i| q.mapped.contains(i))) {
            return last;
        }
    } else if b >= UNWRITTEN {
        let mut fresh = q.mapped;
        fresh.remove(&q.written);
        if !fresh.is_empty() {
            return p.window_start + fresh.nth(k % fresh.count());
        }
    } else if b >= WRITTEN && !q.written.is_empty() {
        return p.window_start + q.written.nth(k % q.written.count());
    }
    p.window_start + q.mapped.nth(k % q.mapped.count())
}

/// The write value a narrow VALUE byte stands for.
fn value_of(b: u8) -> u64 {
    match b {
        0x00..=0x7F => u64::from(b),
        0x80..=0xBF => (u64::from((b >> 4) & 3) << 32) | u64::from(b & 0xF),
        0xC0..=0xFE => VALUE_TAG | u64::from(b),
        0xFF => u64::MAX,
    }
}

/// A narrow VALUE byte for `v`, if there is one.
fn value_byte(v: u64) -> Option<u8> {
    if v < 0x80 {
        return u8::try_from(v).ok();
    }
    let (file, off) = (v >> 32, v & 0xFFFF_FFFF);
    if file < 4 && off < 16 {
        return u8::try_from(0x80 | (file << 4) | off).ok();
    }
    if v == u64::MAX {
        return Some(0xFF);
    }
    match v.checked_sub(VALUE_TAG).and_then(|b| u8::try_from(b).ok()) {
        Some(b) if b >= 0xC0 => Some(b),
        _ => None,
    }
}

/// Decodes fuzz bytes into a valid stream (see the module doc).
pub fn decode(bytes: &[u8], cfg: &DecodeConfig) -> Stream {
    decode_impl(bytes, cfg, None)
}

/// Where one decoded block sits in the input ([`block_layout`]): offsets
/// into the bytes as given to [`decode`] (the wide-mode magic included).
/// The block's parts are contiguous: kind byte, shape byte
/// (`actors[0].start - 1`), the actors, the length byte, the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockBytes {
    /// From the `par` kind byte (from the `0xFF` before it, when the kind
    /// byte needed one) to the end of the schedule.
    pub bytes: Range<usize>,
    /// Each actor's bytes, in letter order (one per op of the block; empty
    /// for a mutator that is a block's move back, shape bit 7).
    pub actors: Vec<Range<usize>>,
    /// The schedule's length byte: its low 5 bits are the number of
    /// schedule bytes, its high 3 bits are ignored.
    pub len_byte: usize,
    /// The schedule's decision bytes (`len_byte + 1 ..`), the block's
    /// `#HEX`.
    pub sched: Range<usize>,
}

/// Where the blocks of `decode(bytes, cfg)` are in `bytes`, one entry per
/// block of the stream, in order. Changing only bytes in the `sched`
/// ranges changes only the blocks' schedules; so does inserting or
/// deleting schedule bytes when the length byte's low 5 bits are set to
/// the new length (at most [`MAX_SCHED_BYTES`]): nothing the decoder reads
/// for the ops depends on the schedule ([`schedule::mutate_schedule`]).
pub fn block_layout(bytes: &[u8], cfg: &DecodeConfig) -> Vec<BlockBytes> {
    let mut layout = Vec::new();
    // Most inputs' swarm header switches blocks off: no need to decode.
    let rest = bytes.strip_prefix(&WIDE_MAGIC).unwrap_or(bytes);
    if let [k0, k1, m, ..] = *rest
        && !Params::new(cfg).swarm(k0, k1, m).0.contains(OpKinds::PAR)
    {
        return layout;
    }
    decode_impl(bytes, cfg, Some(&mut layout));
    layout
}

/// [`decode`], also recording where each block is when `layout` is given.
fn decode_impl(
    bytes: &[u8],
    cfg: &DecodeConfig,
    mut layout: Option<&mut Vec<BlockBytes>>,
) -> Stream {
    let p = Params::new(cfg);
    let mut r = match bytes.strip_prefix(&WIDE_MAGIC) {
        Some(rest) => Reader {
            bytes: rest,
            wide: true,
            merged: false,
            aim: aim_vmalock::Aim::default(),
        },
        None => Reader {
            bytes,
            wide: false,
            merged: false,
            aim: aim_vmalock::Aim::default(),
        },
    };
    // The offset in `bytes` of a point where `rest` bytes are left.
    let at = |rest: usize| bytes.len() - rest;
    let mut ops = Vec::with_capacity(p.max_ops.min(r.bytes.len()));
    let mut blocks = Vec::new();
    if let (Some(k0), Some(k1), Some(m)) = (r.byte(), r.byte(), r.byte()) {
        let (kinds, maps) = p.swarm(k0, k1, m);
        let mut live = Live::new();
        live.alt = Params::alt_prot(k0, k1, m);
        live.slots = (k0 ^ k1 ^ m) & aim_slots::SLOTS_BIT != 0;
        let vmalock = (k0 ^ k1 ^ m) & aim_vmalock::VMALOCK_BIT != 0;
        live.merge_aim = (k0 ^ k1 ^ m) & aim_merge::MERGE_BIT != 0;
        while ops.len() < p.max_ops {
            let start = r.bytes.len();
            match decode_op(&mut r, &p, kinds, maps, &live) {
                Some(Decoded::Op(op)) => {
                    live.apply(&op, &p);
                    ops.push(op);
                }
                Some(Decoded::Skip) => {}
                Some(Decoded::Par) => {
                    r.aim = aim_vmalock::Aim {
                        on: vmalock,
                        ..Default::default()
                    };
                    let block = decode_block(&mut r, &p, kinds, maps, &mut live);
                    r.aim.on = false;
                    let Some(block) = block else {
                        break;
                    };
                    if ops.len() + block.ops.len() > p.max_ops {
                        break;
                    }
                    if let Some(layout) = layout.as_deref_mut() {
                        let n = block.ops.len();
                        let marks = &block.marks[..=n];
                        let len_byte = at(marks[n]);
                        layout.push(BlockBytes {
                            bytes: at(start)..len_byte + 1 + block.sched.len(),
                            actors: marks.windows(2).map(|w| at(w[0])..at(w[1])).collect(),
                            len_byte,
                            sched: len_byte + 1..len_byte + 1 + block.sched.len(),
                        });
                    }
                    blocks.push(Block {
                        first: ops.len(),
                        actors: block.ops.len(),
                        sched: Sched::Bytes(block.sched),
                        line: 0,
                        sched_line: 0,
                        sched_col: 0,
                    });
                    ops.extend(block.ops);
                }
                None => break,
            }
        }
    }
    if blocks.is_empty() {
        Stream::from_ops(ops)
    } else {
        Stream::with_blocks(ops, blocks)
    }
}

/// What a kind byte started: an op, or a concurrent block.
enum Decoded {
    Op(Op),
    Par,
    /// An op that would change a temporary stack ([`touches_stack`]):
    /// dropped.
    Skip,
}

/// Index of `par` in [`OP_KEYWORDS`].
const PAR_INDEX: usize = 15;
/// Index of `exec-stack` in [`OP_KEYWORDS`].
const EXEC_STACK_INDEX: usize = 16;
/// Index of `exec-shift` in [`OP_KEYWORDS`].
const EXEC_SHIFT_INDEX: usize = 17;
/// Most schedule bytes of a decoded block (the length byte's low 5 bits).
pub const MAX_SCHED_BYTES: usize = 31;

fn decode_op(
    r: &mut Reader<'_>,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &Live,
) -> Option<Decoded> {
    let mut b = r.byte()?;
    if b == LAST_EXIT && live.last_exit(kinds) {
        b = r.byte()?;
        if b == LAST_EXIT {
            return Some(Decoded::Op(Op::Exit {
                pid: Pid(live.pids[0]),
            }));
        }
    }
    let allowed = live.allowed(kinds, p.max_procs);
    let kind = pick_weighted(b, allowed.bits(), live.weights())?;
    if kind == PAR_INDEX {
        return Some(Decoded::Par);
    }
    let op = decode_args(kind, r, p, maps, live, false)?;
    if touches_stack(&op, p, live) {
        return Some(Decoded::Skip);
    }
    Some(Decoded::Op(op))
}

/// A block's actors, in letter order (see the module doc, "Blocks").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Mutator,
    /// The walker kind's value (bits of the shape byte).
    Walker(u8),
    Fault,
}

/// The roles a shape byte gives, in letter order; `faults` whether a
/// fault may be generated at all.
fn block_roles(sh: u8, faults: bool) -> ([Role; 4], usize) {
    let mut roles = [Role::Mutator; 4];
    let mut n = 0;
    let mut push = |r| {
        roles[n] = r;
        n += 1;
    };
    let last = sh & 0x40 != 0;
    if !last {
        push(Role::Mutator);
    }
    push(Role::Walker((sh >> 2) & 3));
    if sh & 1 != 0 {
        push(Role::Walker((sh >> 4) & 3));
    }
    if sh & 2 != 0 && faults {
        push(Role::Fault);
    }
    if last {
        push(Role::Mutator);
    }
    (roles, n)
}

/// The walker kinds a block may use: the swarm's, else the config's.
fn walker_kinds(kinds: OpKinds, p: &Params) -> OpKinds {
    let w = kinds & OpKinds::WALKERS;
    if w.is_empty() {
        p.kinds & OpKinds::WALKERS
    } else {
        w
    }
}

/// The op index of the walker kind a 2-bit value picks among `walkers`.
fn walker_index(walkers: OpKinds, v: u8) -> usize {
    let bits = walkers.bits();
    nth_bit(u64::from(bits), u32::from(v) % bits.count_ones()) as usize
}

/// The fault kinds a block may use.
fn fault_kinds(kinds: OpKinds) -> OpKinds {
    kinds & (OpKinds::READ | OpKinds::WRITE)
}

/// A decoded block: its actors, its schedule bytes, and `marks[k]`, the
/// bytes left to read before actor `k` (`marks[n]`: before the length
/// byte), for [`block_layout`].
struct RawBlock {
    ops: Vec<Op>,
    sched: Vec<u8>,
    marks: [usize; 5],
}

/// A concurrent block after its kind byte: its actors (applied to `live`
/// in letter order, as a consumer that ignores blocks runs them) and its
/// schedule bytes.
fn decode_block(
    r: &mut Reader<'_>,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &mut Live,
) -> Option<RawBlock> {
    let sh = r.byte()?;
    if aim_slots::is_slot_block(sh, kinds, p, live) {
        return aim_slots::slot_block(r, p, kinds, maps, live, sh);
    }
    let walkers = walker_kinds(kinds, p);
    let faults = fault_kinds(kinds);
    let (roles, n) = block_roles(sh, !faults.is_empty());
    let mut ops = Vec::with_capacity(n);
    let mut marks = [0; 5];
    // The written pages of the mutator's process before it ran.
    let mut before: Option<(Pid, PageSet)> = None;
    // Whether the mutator is a move back ([`block_move_back`]).
    let mut back = false;
    // The written pages of the mapping right after an mprotect mutator's
    // range ([`Proc::next_mapping`]).
    let mut next = PageSet::default();
    // Whether the mutator is an mprotect its PROT byte made a merge with
    // the mapping after its range ([`whole_to_next`]; the encoder never
    // writes that byte).
    let mut merge = false;
    // The pages the merge aim's mutator races ([`aim_merge::mutator`]).
    let mut aimed_next = None;
    for (k, &role) in roles[..n].iter().enumerate() {
        marks[k] = r.bytes.len();
        let op = match role {
            Role::Mutator => {
                let op = match block_move_back(sh, kinds, p, live) {
                    Some(op) => {
                        back = true;
                        op
                    }
                    None => {
                        let b = r.byte()?;
                        // The merge aim's mprotect, and the pages its
                        // walkers race.
                        if let Some(aimed) = aim_merge::mutator(b, r, p, kinds, live) {
                            let (op, raced) = aimed?;
                            merge = true;
                            aimed_next = Some(raced);
                            op
                        } else {
                            let allowed = live.allowed(kinds & OpKinds::MUTATORS, p.max_procs);
                            let kind = pick_weighted(b, allowed.bits(), live.weights())?;
                            r.merged = false;
                            let op = decode_args(kind, r, p, maps, live, true)?;
                            if touches_stack(&op, p, live) {
                                return None;
                            }
                            merge = r.merged;
                            op
                        }
                    }
                };
                before = op
                    .pid()
                    .and_then(|pid| Some((pid, live.procs[live.slot(pid)?].written)));
                if let Op::Mprotect { pid, addr, len, .. } = op
                    && let Some(i) = live.slot(pid)
                {
                    let q = &live.procs[i];
                    next = q.next_mapping(p.bits(addr, len).1);
                    next.and(&q.written);
                }
                if let Some(raced) = aimed_next.take() {
                    next = raced;
                }
                op
            }
            Role::Walker(v) => {
                if live.len == 0 {
                    return None;
                }
                // A selector from PICK_NEWEST on picks the mutator's
                // process, when it is live: the walk races its mutator. So
                // does one below PICK_ANY after a move back or a merge,
                // which the encoder never writes.
                let s = r.byte()?;
                let slot = match before.and_then(|(m, _)| live.slot(m)) {
                    Some(m) if s >= PICK_NEWEST || ((back || merge) && s < PICK_ANY) => m,
                    _ => live.pick(s, true),
                };
                let pid = Pid(live.pids[slot]);
                let (pre, near) = before
                    .filter(|&(m, _)| m == pid)
                    .map_or((PageSet::default(), PageSet::default()), |(_, w)| (w, next));
                let addr = r.target(p, &live.procs[slot], &pre, &near)?;
                // A move back or a merge races migrations (a migration
                // entry left behind, a PTE rebuilt from the wrong VMA),
                // when migrate is on.
                let kind = if (back || merge) && walkers.contains(OpKinds::MIGRATE) {
                    11
                } else {
                    walker_index(walkers, v)
                };
                match kind {
                    9 => Op::Swapout { pid, addr },
                    11 => Op::Migrate { pid, addr },
                    _ => Op::Referenced { pid, addr },
                }
            }
            Role::Fault => {
                if live.len == 0 {
                    return None;
                }
                let b = r.byte()?;
                let write = faults.contains(OpKinds::WRITE)
                    && (b & 1 != 0
                        || !faults.contains(OpKinds::READ)
                        || aim_vmalock::fault_writes(&r.aim));
                let s = r.byte()?;
                let slot = match aim_vmalock::fault_pid(&r.aim, s).and_then(|m| live.slot(m)) {
                    Some(m) => m,
                    None => live.pick(s, true),
                };
                let pid = Pid(live.pids[slot]);
                let addr = r.fault_addr(p, &live.procs[slot], pid, live.last)?;
                if r.aim.on {
                    r.aim.fault = Some((pid, addr));
                }
                if write {
                    Op::Write {
                        pid,
                        addr,
                        value: r.value()?,
                    }
                } else {
                    Op::Read { pid, addr }
                }
            }
        };
        live.apply(&op, p);
        ops.push(op);
    }
    marks[n] = r.bytes.len();
    let len = usize::from(r.byte()?) & MAX_SCHED_BYTES;
    let sched = r.bytes.get(..len)?.to_vec();
    r.bytes = &r.bytes[len..];
    Some(RawBlock { ops, sched, marks })
}

/// The process selector and arguments of an op of kind `kind` (not `par`).
fn decode_args(
    kind: usize,
    r: &mut Reader<'_>,
    p: &Params,
    maps: MapKinds,
    live: &Live,
    in_block: bool,
) -> Option<Op> {
    if kind == 10 {
        return Some(Op::Reclaim);
    }
    if kind == 12 {
        return Some(Op::FailAlloc {
            n: r.offset_field(1, FAIL_ALLOC_MAX)?,
        });
    }
    if kind == 13 {
        return Some(Op::Dump);
    }
    let s = r.byte()?;
    let slot = if kind == EXEC_SHIFT_INDEX {
        live.pick_stack(s)
    } else {
        live.pick(s, has_mapped_addr(kind))
    };
    let pid = Pid(live.pids[slot]);
    let q = &live.procs[slot];
    let set = &q.mapped;
    Some(match kind {
        0 => {
            let (addr, gap) = r.gap_addr(p, set)?;
            let len = r.len(p)?;
            // A gap is filled, not overrun.
            let len = gap.map_or(len, |g| len.min(g));
            let pr = r.byte()?;
            let kd = r.byte()?;
            let file = kd >> 6;
            let kind = match pick_weighted(kd & 0x3F, maps.bits().into(), &MAP_WEIGHTS)? {
                0 => Kind::Anon,
                1 => Kind::Shared,
                2 => Kind::File {
                    file,
                    off: r.offset_field(0, FILE_OFF_RANGE)?,
                },
                _ => Kind::SFile {
                    file,
                    off: r.offset_field(0, FILE_OFF_RANGE)?,
                },
            };
            Op::Mmap {
                pid,
                addr,
                len,
                prot: prot_of(pr, &PROTS, live.alt),
                kind,
                replace: (pr >> 4) & 3 == REPLACE_GROUP,
            }
        }
        1 => Op::Munmap {
            pid,
            addr: r.mapped(p, q, live.last)?,
            len: r.len(p)?,
        },
        2 => {
            let addr = r.mapped(p, q, live.last)?;
            let len = r.run_len(p, set, addr)?;
            let pr = r.byte()?;
            if in_block
                && let Some(op) = aim_vmalock::merge_into_unfaulted(&mut r.aim, pid, addr, pr, p, q)
            {
                return Some(op);
            }
            // A block's mutator: with bit 4 alone (half of them).
            let whole = if in_block { WHOLE_IN_BLOCK } else { WHOLE };
            if pr & whole == whole
                && let Some(op) = whole_to_next(pid, addr, p, q)
            {
                r.merged = true;
                return Some(op);
            }
            let (lo, hi) = p.bits(addr, len);
            let neighbour = (pr & NEIGHBOUR == NEIGHBOUR)
                .then(|| q.neighbour_prot(lo, hi))
                .flatten();
            Op::Mprotect {
                pid,
                addr,
                len,
                prot: neighbour.unwrap_or_else(|| prot_of(pr, &MPROTECT_PROTS, live.alt)),
            }
        }
        3 => {
            let sh = r.byte()?;
            let shape = sh % 8;
            if let Some(op) = move_back(pid, sh, p, q, in_block) {
                return Some(op);
            }
            let old = r.mapped(p, q, live.last)?;
            if in_block && let Some(op) = aim_vmalock::dontunmap_whole(r, pid, sh, old, p, q)? {
                return Some(op);
            }
            let old_len = r.run_len(p, set, old)?;
            let (moves, same_len, dontunmap) = match shape {
                0..=2 => (false, false, false),
                3 | 7 => (true, true, false),
                4 => (true, true, true),
                5 => (true, false, false),
                _ => (true, false, true),
            };
            let new_len = if same_len { old_len } else { r.len(p)? };
            let to = if moves {
                Some(MremapTo {
                    new: r.dest(p, set, new_len)?,
                    dontunmap,
                })
            } else {
                None
            };
            Op::Mremap {
                pid,
                old,
                old_len,
                new_len,
                to,
            }
        }
        4 => {
            let addr = r.mapped(p, q, live.last)?;
            Op::Madvise {
                pid,
                addr,
                len: r.run_len(p, set, addr)?,
                advice: Advice::ALL[usize::from(r.byte()? % 5)],
            }
        }
        5 => Op::Fork { pid },
        6 => Op::Exit { pid },
        7 => Op::Read {
            pid,
            addr: r.mapped(p, q, live.last)?,
        },
        8 => Op::Write {
            pid,
            addr: r.mapped(p, q, live.last)?,
            value: r.value()?,
        },
        9 => Op::Swapout {
            pid,
            addr: r.mapped(p, q, live.last)?,
        },
        11 => Op::Migrate {
            pid,
            addr: r.mapped(p, q, live.last)?,
        },
        EXEC_STACK_INDEX => {
            let (addr, hole) = r.hole_addr(p, set)?;
            let len = r.len(p)?;
            match hole {
                // At the top of the hole, a page left below it when the
                // hole has more than one.
                Some((h, size)) => {
                    let len = len.min(size.saturating_sub(1).max(1));
                    Op::ExecStack {
                        pid,
                        // Below the window's end (a wide LEN may be 0).
                        addr: p.window_start + (h + size - len.max(1)),
                        len,
                    }
                }
                None => Op::ExecStack { pid, addr, len },
            }
        }
        EXEC_SHIFT_INDEX => {
            // A shift within the free pages below the stack.
            let room = q.room_below();
            let shift = match r.tracked(room > 0, p.window_len)? {
                Ok(b) => 1 + u64::from(b) % room,
                Err(Field::Narrow(v) | Field::Wide(v)) => v,
            };
            Op::ExecShift { pid, shift }
        }
        _ => Op::Referenced {
            pid,
            addr: r.mapped(p, q, live.last)?,
        },
    })
}

/// Why one encoding attempt failed.
enum Fail {
    /// The stream has no encoding at all.
    Error(EncodeError),
    /// A value needs an escape: retry in wide mode.
    NeedsWide,
}

impl From<EncodeError> for Fail {
    fn from(e: EncodeError) -> Fail {
        Fail::Error(e)
    }
}

/// Encodes a stream into bytes that [`decode`] turns back into it.
///
/// Succeeds for every stream with at most `max_ops` ops, of kinds and map
/// kinds the config enables, whose ops name only live processes, that never
/// has more than `max_procs` processes live, and whose file numbers are
/// valid. Values outside the decoder's ranges are carried in wide mode.
pub fn encode(stream: &Stream, cfg: &DecodeConfig) -> Result<Vec<u8>, EncodeError> {
    match encode_mode(stream, cfg, false) {
        Ok(bytes) => Ok(bytes),
        Err(Fail::Error(e)) => Err(e),
        Err(Fail::NeedsWide) => match encode_mode(stream, cfg, true) {
            Ok(bytes) => Ok(bytes),
            Err(Fail::Error(e)) => Err(e),
            // Wide mode can carry any value.
            Err(Fail::NeedsWide) => unreachable!("wide mode needs no escape"),
        },
    }
}

struct Writer {
    out: Vec<u8>,
    wide: bool,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// Writes `value` as a field of `range(n)` standing for `base + v`.
    fn field(&mut self, value: u64, base: u64, n: u64) -> Result<(), Fail> {
        let narrow = value.checked_sub(base).filter(|&v| v < n);
        let bytes = match narrow {
            Some(v) if n <= 256 => u8::try_from(v).ok().map(|b| [b, 0]).map(|b| (b, 1)),
            Some(v) => u16::try_from(v).ok().map(|v| (v.to_le_bytes(), 2)),
            None => None,
        };
        match bytes {
            Some((b, len)) if !(self.wide && b[0] == ESCAPE) => {
                self.out.extend_from_slice(&b[..len]);
                Ok(())
            }
            _ => self.escape(value),
        }
    }

    fn escape(&mut self, value: u64) -> Result<(), Fail> {
        if !self.wide {
            return Err(Fail::NeedsWide);
        }
        self.out.push(ESCAPE);
        self.varint(value);
        Ok(())
    }

    fn addr(&mut self, addr: u64, p: &Params) -> Result<(), Fail> {
        self.field(addr, p.window_start, p.window_len)
    }

    fn len(&mut self, len: u64, p: &Params) -> Result<(), Fail> {
        self.field(len, 1, p.max_len)
    }

    /// Writes `value` as a tracked field standing for `base + v`, always in
    /// its direct form.
    fn tracked(&mut self, choices: bool, value: u64, base: u64, n: u64) -> Result<(), Fail> {
        if !choices {
            return self.field(value, base, n);
        }
        match value.checked_sub(base).filter(|&v| v < n) {
            Some(v) if n <= COMPACT => {
                // v < COMPACT: the byte is in DIRECT..=0xFF.
                let b = DIRECT + v as u8;
                if self.wide && b == ESCAPE {
                    return self.escape(value);
                }
                self.out.push(b);
                Ok(())
            }
            Some(_) => {
                self.out.push(DIRECT);
                self.field(value, base, n)
            }
            None => self.escape(value),
        }
    }

    fn mapped(&mut self, addr: u64, p: &Params, set: &PageSet) -> Result<(), Fail> {
        self.tracked(!set.is_empty(), addr, p.window_start, p.window_len)
    }

    fn run_len(&mut self, len: u64, p: &Params, set: &PageSet, addr: u64) -> Result<(), Fail> {
        self.tracked(run_choices(p, set, addr) > 0, len, 1, p.max_len)
    }

    /// Writes an mmap address ([`Reader::gap_addr`]) in its direct form.
    fn gap_addr(&mut self, addr: u64, p: &Params, set: &PageSet) -> Result<(), Fail> {
        if gaps(p, set).is_empty() {
            return self.addr(addr, p);
        }
        match addr
            .checked_sub(p.window_start)
            .filter(|&v| v < p.window_len)
        {
            Some(v) if p.window_len <= GAP_COMPACT => {
                // v < GAP_COMPACT: the byte is in GAP..=0xFE.
                self.out.push(GAP + v as u8);
                Ok(())
            }
            Some(_) => {
                self.out.push(GAP);
                self.addr(addr, p)
            }
            None => self.escape(addr),
        }
    }

    /// Writes an exec-stack address ([`Reader::hole_addr`]) in its direct
    /// form.
    fn hole_addr(&mut self, addr: u64, p: &Params, set: &PageSet) -> Result<(), Fail> {
        if holes(p, set).is_empty() {
            return self.addr(addr, p);
        }
        match addr
            .checked_sub(p.window_start)
            .filter(|&v| v < p.window_len)
        {
            Some(v) if p.window_len <= GAP_COMPACT => {
                // v < GAP_COMPACT: the byte is in HOLE..=0xFE.
                self.out.push(HOLE + v as u8);
                Ok(())
            }
            Some(_) => {
                self.out.push(HOLE);
                self.addr(addr, p)
            }
            None => self.escape(addr),
        }
    }

    /// Writes an mremap destination ([`Reader::dest`]) in its direct
    /// form.
    fn dest(&mut self, new: u64, p: &Params, set: &PageSet, len: u64) -> Result<(), Fail> {
        if edges(p, set, len).is_empty() {
            return self.addr(new, p);
        }
        match new
            .checked_sub(p.window_start)
            .filter(|&v| v < p.window_len)
        {
            Some(v) if p.window_len <= EDGE_COMPACT => {
                // v < EDGE_COMPACT: the byte is in EDGE..=0xFE.
                self.out.push(EDGE + v as u8);
                Ok(())
            }
            Some(_) => {
                self.out.push(EDGE);
                self.addr(new, p)
            }
            None => self.escape(new),
        }
    }

    fn value(&mut self, value: u64) -> Result<(), Fail> {
        match value_byte(value) {
            Some(b) if !(self.wide && b == ESCAPE) => {
                self.out.push(b);
                Ok(())
            }
            _ => self.escape(value),
        }
    }
}

fn encode_mode(stream: &Stream, cfg: &DecodeConfig, wide: bool) -> Result<Vec<u8>, Fail> {
    let p = Params::new(cfg);
    if stream.ops.len() > p.max_ops {
        return Err(EncodeError::TooManyOps {
            ops: stream.ops.len(),
            max_ops: p.max_ops,
        }
        .into());
    }
    let mut w = Writer {
        out: Vec::new(),
        wide,
    };
    if wide {
        w.out.extend_from_slice(&WIDE_MAGIC);
    }
    // Switch on every kind the config enables.
    w.out.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
    let (kinds, maps) = p.swarm(0xFF, 0xFF, 0xFF);
    let mut live = Live::new();
    let mut blocks = stream.blocks.iter().peekable();
    let mut index = 0;
    while index < stream.ops.len() {
        if let Some(block) = blocks.next_if(|b| b.first == index) {
            encode_block(&mut w, &p, kinds, maps, &mut live, stream, block)?;
            index += block.actors;
            continue;
        }
        let op = &stream.ops[index];
        encode_op(&mut w, &p, kinds, maps, &live, index, op)?;
        live.apply(op, &p);
        index += 1;
    }
    if let Some(block) = blocks.next() {
        return Err(EncodeError::BadBlock {
            first: block.first,
            why: "its ops are not in the stream, or it overlaps another block",
        }
        .into());
    }
    Ok(w.out)
}

/// Writes a block: the `par` kind byte, its shape byte, each actor as
/// [`decode_block`] reads it, then its schedule bytes.
fn encode_block(
    w: &mut Writer,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &mut Live,
    stream: &Stream,
    block: &Block,
) -> Result<(), Fail> {
    let bad = |why| {
        Fail::Error(EncodeError::BadBlock {
            first: block.first,
            why,
        })
    };
    let ops = stream
        .ops
        .get(block.ops())
        .ok_or(bad("its ops are not in the stream"))?;
    let allowed = live.allowed(kinds, p.max_procs);
    if !kinds.contains(OpKinds::PAR) || !allowed.contains(OpKinds::PAR) {
        return Err(bad(
            "blocks are not enabled, or no page is mapped before it",
        ));
    }
    let Sched::Bytes(sched) = &block.sched else {
        return Err(bad("its schedule is not raw decision bytes (#HEX)"));
    };
    if sched.len() > MAX_SCHED_BYTES {
        return Err(bad("its schedule has more than 31 bytes"));
    }
    let walkers = walker_kinds(kinds, p);
    let faults = fault_kinds(kinds);
    let is_mutator = |op: &Op| OpKinds::MUTATORS.contains(OpKinds::of(op));
    let (last, rest) = match ops {
        [m, rest @ ..] if is_mutator(m) => (false, rest),
        [rest @ .., m] if is_mutator(m) => (true, rest),
        _ => return Err(bad("its first or last op must be a mutator (mmap .. exit)")),
    };
    let is_fault = |op: &Op| matches!(op, Op::Read { .. } | Op::Write { .. });
    let (walker_ops, fault) = match rest {
        [ws @ .., f] if is_fault(f) => (ws, true),
        ws => (ws, false),
    };
    if walker_ops.is_empty() || walker_ops.len() > 2 {
        return Err(bad(
            "it must have one or two walkers (swapout, migrate, referenced)",
        ));
    }
    let mut sh = u8::from(last) << 6 | u8::from(walker_ops.len() == 2) | u8::from(fault) << 1;
    for (j, op) in walker_ops.iter().enumerate() {
        let kind = OpKinds::of(op);
        if !OpKinds::WALKERS.contains(kind) {
            return Err(bad(
                "it must have one or two walkers (swapout, migrate, referenced)",
            ));
        }
        if !walkers.contains(kind) {
            return Err(bad("one of its walker kinds is not enabled"));
        }
        let v = (walkers.bits() & (kind.bits() - 1)).count_ones() as u8;
        sh |= v << (2 + 2 * j);
    }
    if fault && !faults.contains(OpKinds::of(&rest[rest.len() - 1])) {
        return Err(bad("its fault's kind is not enabled"));
    }
    w.out
        .push(weighted_byte(PAR_INDEX, allowed.bits(), live.weights()));
    w.out.push(sh);
    let (roles, n) = block_roles(sh, !faults.is_empty());
    for (k, (&role, op)) in roles[..n].iter().zip(ops).enumerate() {
        let index = block.first + k;
        let not_live = || Fail::Error(EncodeError::NotLive { index, op: *op });
        match role {
            Role::Mutator => {
                let allowed = live.allowed(kinds & OpKinds::MUTATORS, p.max_procs);
                let kind = OpKinds::of(op);
                if !kinds.contains(kind) {
                    return Err(EncodeError::KindDisabled { index, op: *op }.into());
                }
                live.slot(op.pid().expect("a mutator names a process"))
                    .ok_or_else(not_live)?;
                if !allowed.contains(kind) {
                    return Err(EncodeError::TooManyProcesses {
                        index,
                        op: *op,
                        max_procs: p.max_procs,
                    }
                    .into());
                }
                w.out
                    .push(weighted_byte(op_index(op), allowed.bits(), live.weights()));
                if touches_stack(op, p, live) {
                    return Err(EncodeError::TouchesStack { index, op: *op }.into());
                }
                encode_args(w, p, maps, live, index, op)?;
            }
            Role::Walker(_) => {
                let (pid, addr) = match *op {
                    Op::Swapout { pid, addr }
                    | Op::Migrate { pid, addr }
                    | Op::Referenced { pid, addr } => (pid, addr),
                    _ => unreachable!("checked above"),
                };
                let slot = live.slot(pid).ok_or_else(not_live)?;
                w.out.extend(live.selector(pid, true));
                w.mapped(addr, p, &live.procs[slot].mapped)?;
            }
            Role::Fault => {
                let (pid, addr, value) = match *op {
                    Op::Read { pid, addr } => (pid, addr, None),
                    Op::Write { pid, addr, value } => (pid, addr, Some(value)),
                    _ => unreachable!("checked above"),
                };
                let slot = live.slot(pid).ok_or_else(not_live)?;
                w.out.push(u8::from(value.is_some()));
                w.out.extend(live.selector(pid, true));
                w.mapped(addr, p, &live.procs[slot].mapped)?;
                if let Some(v) = value {
                    w.value(v)?;
                }
            }
        }
        live.apply(op, p);
    }
    w.out.push(sched.len() as u8);
    w.out.extend_from_slice(sched);
    Ok(())
}

fn encode_op(
    w: &mut Writer,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &Live,
    index: usize,
    op: &Op,
) -> Result<(), Fail> {
    let kind = OpKinds::of(op);
    if !kinds.contains(kind) {
        return Err(EncodeError::KindDisabled { index, op: *op }.into());
    }
    if let Some(pid) = op.pid()
        && live.slot(pid).is_none()
    {
        return Err(EncodeError::NotLive { index, op: *op }.into());
    }
    if matches!(op, Op::Exit { .. }) && live.last_exit(kinds) {
        w.out.extend_from_slice(&[LAST_EXIT, LAST_EXIT]);
        return Ok(());
    }
    let allowed = live.allowed(kinds, p.max_procs);
    if !allowed.contains(kind) {
        return Err(EncodeError::TooManyProcesses {
            index,
            op: *op,
            max_procs: p.max_procs,
        }
        .into());
    }
    if touches_stack(op, p, live) {
        return Err(EncodeError::TouchesStack { index, op: *op }.into());
    }
    w.out
        .push(weighted_byte(op_index(op), allowed.bits(), live.weights()));
    encode_args(w, p, maps, live, index, op)
}

/// Writes an op's process selector and arguments (after its kind byte).
fn encode_args(
    w: &mut Writer,
    p: &Params,
    maps: MapKinds,
    live: &Live,
    index: usize,
    op: &Op,
) -> Result<(), Fail> {
    let (selector, mapped) = match op.pid() {
        Some(pid) => {
            let slot = live
                .slot(pid)
                .ok_or(EncodeError::NotLive { index, op: *op })?;
            let selector = match op {
                Op::ExecShift { .. } => live.stack_selector(pid),
                _ => live.selector(pid, has_mapped_addr(op_index(op))),
            };
            (selector, live.procs[slot].mapped)
        }
        None => (None, PageSet::default()),
    };
    let set = &mapped;
    w.out.extend(selector);
    match *op {
        Op::Mmap {
            addr,
            len,
            prot,
            kind,
            replace,
            ..
        } => {
            w.gap_addr(addr, p, set)?;
            w.len(len, p)?;
            let group = if replace { REPLACE_GROUP } else { 0 };
            w.out.push(prot_byte(&PROTS, prot) | group << 4);
            if !maps.contains(MapKinds::of(&kind)) {
                return Err(EncodeError::MapKindDisabled { index, op: *op }.into());
            }
            let kd = weighted_byte(map_index(&kind), maps.bits().into(), &MAP_WEIGHTS);
            match kind {
                Kind::Anon | Kind::Shared => w.out.push(kd),
                Kind::File { file, off } | Kind::SFile { file, off } => {
                    if file >= NR_FILES {
                        return Err(EncodeError::BadFile { index, op: *op }.into());
                    }
                    w.out.push(kd | (file << 6));
                    w.field(off, 0, FILE_OFF_RANGE)?;
                }
            }
        }
        Op::Munmap { addr, len, .. } => {
            w.mapped(addr, p, set)?;
            w.len(len, p)?;
        }
        Op::Mprotect {
            addr, len, prot, ..
        } => {
            w.mapped(addr, p, set)?;
            w.run_len(len, p, set, addr)?;
            w.out.push(prot_byte(&MPROTECT_PROTS, prot));
        }
        Op::Mremap {
            old,
            old_len,
            new_len,
            to,
            ..
        } => {
            let same = old_len == new_len;
            let shape = match to {
                None => 0,
                Some(t) => match (same, t.dontunmap) {
                    (true, false) => 3,
                    (true, true) => 4,
                    (false, false) => 5,
                    (false, true) => 6,
                },
            };
            w.out.push(shape);
            w.mapped(old, p, set)?;
            w.run_len(old_len, p, set, old)?;
            if !(to.is_some() && same) {
                w.len(new_len, p)?;
            }
            if let Some(t) = to {
                w.dest(t.new, p, set, new_len)?;
            }
        }
        Op::Madvise {
            addr, len, advice, ..
        } => {
            w.mapped(addr, p, set)?;
            w.run_len(len, p, set, addr)?;
            w.out.push(advice_index(advice));
        }
        Op::Read { addr, .. }
        | Op::Swapout { addr, .. }
        | Op::Migrate { addr, .. }
        | Op::Referenced { addr, .. } => {
            w.mapped(addr, p, set)?;
        }
        Op::Write { addr, value, .. } => {
            w.mapped(addr, p, set)?;
            w.value(value)?;
        }
        Op::FailAlloc { n } => w.field(n, 1, FAIL_ALLOC_MAX)?,
        Op::Fork { .. } | Op::Exit { .. } | Op::Reclaim | Op::Dump => {}
        Op::ExecStack { addr, len, .. } => {
            w.hole_addr(addr, p, set)?;
            w.len(len, p)?;
        }
        Op::ExecShift { pid, shift } => {
            let room = live.slot(pid).map_or(0, |i| live.procs[i].room_below());
            w.tracked(room > 0, shift, 0, p.window_len)?;
        }
    }
    Ok(())
}

/// The smallest PROT byte for `prot` in `table` ([`PROTS`] or
/// [`MPROTECT_PROTS`], which have every protection).
fn prot_byte(table: &[Prot], prot: Prot) -> u8 {
    let i = table.iter().position(|&q| q == prot);
    i.unwrap_or(0) as u8
}

fn advice_index(advice: Advice) -> u8 {
    match advice {
        Advice::DontNeed => 0,
        Advice::DontFork => 1,
        Advice::DoFork => 2,
        Advice::WipeOnFork => 3,
        Advice::KeepOnFork => 4,
    }
}
