use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The engine's notion of now: the system clock, or a controllable one for tests and
/// `--now` (deferred steps are due by this clock).
#[derive(Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { fixed: None }
    }
    /// A clock standing at `at` until advanced.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock {
            fixed: Some(Arc::new(Mutex::new(at))),
        }
    }
    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.fixed {
            Some(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
            None => Utc::now(),
        }
    }
    /// Moves a fixed clock forward (no effect on the system clock).
    pub fn advance(&self, by: chrono::Duration) {
        if let Some(t) = &self.fixed {
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            *t += by;
        }
    }
}
