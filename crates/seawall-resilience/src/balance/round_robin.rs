//! Round robin: each endpoint in turn, skipping excluded ones.

/// Round-robin state: the index to try next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundRobin {
    len: usize,
    next: usize,
}

impl RoundRobin {
    /// Round robin over `len` endpoints, starting with the first.
    pub fn new(len: usize) -> Self {
        Self { len, next: 0 }
    }

    /// The next endpoint not in `excluded`, or `None` if all are.
    pub fn pick(&mut self, excluded: &[usize]) -> Option<usize> {
        for step in 0..self.len {
            let candidate = (self.next + step) % self.len;
            if !excluded.contains(&candidate) {
                self.next = (candidate + 1) % self.len;
                return Some(candidate);
            }
        }
        None
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True with no endpoints.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
