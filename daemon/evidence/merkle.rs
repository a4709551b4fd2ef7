//! A Merkle root over hex sha256 leaves: pairs hashed level by level (an odd last node is
//! carried up as it is); the empty tree's root is the sha256 of nothing.

use super::sha256_hex;

pub fn root(leaves: &[String]) -> String {
    if leaves.is_empty() {
        return sha256_hex(b"");
    }
    let mut level: Vec<String> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => sha256_hex(format!("{a}{b}").as_bytes()),
                [a] => a.clone(),
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_changes_the_root_and_order_matters() {
        let leaves: Vec<String> = (0..5).map(|i| sha256_hex(&[i])).collect();
        let r = root(&leaves);
        for i in 0..leaves.len() {
            let mut changed = leaves.clone();
            changed[i] = sha256_hex(b"x");
            assert_ne!(root(&changed), r, "leaf {i}");
        }
        let mut swapped = leaves.clone();
        swapped.swap(0, 1);
        assert_ne!(root(&swapped), r);
        assert_ne!(root(&leaves[..4]), r, "a leaf removed");
    }
}
