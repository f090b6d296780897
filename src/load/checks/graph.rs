//! The `needs` graph of one DSR kind: transitive closures and cycles.

use std::collections::{BTreeMap, BTreeSet};

/// Step id → the ids it needs directly (unknown ids are left out).
pub type Needs<'a> = BTreeMap<&'a str, Vec<&'a str>>;

/// Every step reachable through `needs` from `start` (not including `start` unless a
/// cycle leads back to it).
pub fn closure<'a>(needs: &Needs<'a>, start: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = needs.get(start).cloned().unwrap_or_default();
    while let Some(n) = todo.pop() {
        if seen.insert(n)
            && let Some(next) = needs.get(n)
        {
            todo.extend(next.iter().copied());
        }
    }
    seen
}

/// Every cycle, once each, as the path of ids with the first repeated at the end
/// (`a -> b -> a`), rotated to start at its smallest id.
pub fn cycles<'a>(needs: &Needs<'a>) -> Vec<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = needs.keys().map(|k| (*k, Mark::New)).collect();
    let mut found: BTreeSet<Vec<&str>> = BTreeSet::new();
    for &root in needs.keys() {
        if mark.get(root) != Some(&Mark::New) {
            continue;
        }
        // Iterative DFS: (node, index of the next child to visit).
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        mark.insert(root, Mark::Active);
        while let Some((node, i)) = stack.last().copied() {
            let children = needs.get(node).map(Vec::as_slice).unwrap_or_default();
            if i >= children.len() {
                mark.insert(node, Mark::Done);
                stack.pop();
                continue;
            }
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            let child = children[i];
            match mark.get(child).copied() {
                Some(Mark::New) => {
                    mark.insert(child, Mark::Active);
                    stack.push((child, 0));
                }
                Some(Mark::Active) => {
                    let from = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                    let min = (0..cycle.len()).min_by_key(|j| cycle[*j]).unwrap_or(0);
                    cycle.rotate_left(min);
                    let first = cycle[0];
                    cycle.push(first);
                    found.insert(cycle);
                }
                _ => {}
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(edges: &[(&'a str, &[&'a str])]) -> Needs<'a> {
        edges.iter().map(|(k, v)| (*k, v.to_vec())).collect()
    }

    #[test]
    fn finds_a_cycle_as_a_path() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        assert_eq!(cycles(&g), vec![vec!["a", "b", "c", "a"]]);
    }

    #[test]
    fn self_need_is_a_cycle() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(cycles(&g), vec![vec!["a", "a"]]);
    }

    #[test]
    fn closure_is_transitive_and_terminates_on_cycles() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]);
        let c: Vec<&str> = closure(&g, "a").into_iter().collect();
        assert_eq!(c, vec!["b", "c"]);
        assert!(cycles(&graph(&[("a", &["b"]), ("b", &[])])).is_empty());
    }
}
