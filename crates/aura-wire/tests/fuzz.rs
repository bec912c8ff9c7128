//! Property tests of the decoder: no panic and bounded memory on any input,
//! round trips of valid frames, and rejection of corrupted ones.

use aura_wire::frame::{Frame, FrameError, Opcode, HEADER_LEN};
use proptest::prelude::*;

const MAX: usize = 4096;

fn opcode() -> impl Strategy<Value = Opcode> {
    proptest::sample::select(Opcode::ALL.to_vec())
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        opcode(),
        any::<bool>(),
        any::<u128>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(op, checksum, rid, txn, payload)| {
            let mut f = Frame::new(op, rid, txn, payload);
            if !checksum {
                f.flags = 0;
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match Frame::decode(&bytes, MAX) {
            Ok(Some((frame, used))) => {
                prop_assert!(used <= bytes.len());
                prop_assert!(frame.payload.len() <= MAX);
            }
            Ok(None) => prop_assert!(bytes.len() < HEADER_LEN + MAX + 4),
            Err(_) => {}
        }
    }

    #[test]
    fn header_prefixed_garbage_never_panics(
        f in frame(),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        len in any::<u32>(),
    ) {
        // A valid-looking header announcing any length: the decoder either
        // rejects the length up front or waits, never allocates for it.
        let mut bytes = f.encode().unwrap();
        bytes[12..16].copy_from_slice(&len.to_be_bytes());
        bytes.truncate(HEADER_LEN);
        bytes.extend_from_slice(&tail);
        match Frame::decode(&bytes, MAX) {
            Err(FrameError::PayloadTooLarge { len: l, max }) => {
                prop_assert_eq!(l, u64::from(len));
                prop_assert!(l > max);
            }
            Ok(None) => prop_assert!((len as usize) <= MAX),
            Ok(Some((frame, _))) => prop_assert!(frame.payload.len() <= MAX),
            Err(_) => prop_assert!((len as usize) <= MAX),
        }
    }

    #[test]
    fn valid_frames_round_trip(f in frame(), extra in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut bytes = f.encode().unwrap();
        let len = bytes.len();
        bytes.extend_from_slice(&extra);
        let (decoded, used) = Frame::decode(&bytes, MAX).unwrap().unwrap();
        prop_assert_eq!(used, len);
        prop_assert_eq!(decoded, f);
    }

    #[test]
    fn truncated_frames_need_more(f in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = f.encode().unwrap();
        let cut = cut.index(bytes.len());
        prop_assert_eq!(Frame::decode(&bytes[..cut], MAX).unwrap(), None);
    }

    #[test]
    fn oversized_frames_are_refused(f in frame()) {
        prop_assume!(!f.payload.is_empty());
        let bytes = f.encode().unwrap();
        let max = f.payload.len() - 1;
        prop_assert_eq!(
            Frame::decode(&bytes, max).unwrap_err(),
            FrameError::PayloadTooLarge { len: f.payload.len() as u64, max: max as u64 }
        );
    }

    #[test]
    fn any_flipped_bit_is_detected(
        op in opcode(),
        rid in any::<u128>(),
        txn in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let f = Frame::new(op, rid, txn, payload);
        let mut bytes = f.encode().unwrap();
        // Every byte except those the protocol ignores or that change the
        // framing itself: flags (6-7), reserved (11), payload length (12-15).
        let positions: Vec<usize> = (0..bytes.len())
            .filter(|p| !matches!(p, 6 | 7 | 11 | 12..=15))
            .collect();
        let at = positions[at.index(positions.len())];
        bytes[at] ^= 1 << bit;
        prop_assert!(Frame::decode(&bytes, MAX).is_err());
    }
}
