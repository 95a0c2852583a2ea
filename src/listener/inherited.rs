//! Listening sockets this process inherited (from the process it upgrades, or from systemd),
//! waiting for the endpoint that asks for them. Binding an endpoint takes a matching socket from
//! here first, so a new process binds nothing twice and no connection is refused in between.
//!
//! The table is per process because the sockets are: they arrive before any server or service
//! exists (`-u`, `LISTEN_FDS`), and a host binds endpoints with `proxy_service_add_tcp` long
//! before it has a server.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use parking_lot::Mutex;

/// Sockets by the key of the endpoint that listened on them, each key's sockets in the order the
/// old process had them (so several `127.0.0.1:0` endpoints get back their own ports).
static TABLE: Mutex<Option<HashMap<String, Vec<OwnedFd>>>> = Mutex::new(None);

/// Adds inherited sockets.
pub fn add(fds: impl IntoIterator<Item = (String, OwnedFd)>) {
    let mut t = TABLE.lock();
    let t = t.get_or_insert_with(HashMap::new);
    for (key, fd) in fds {
        t.entry(key).or_default().push(fd);
    }
}

/// Takes the first inherited socket for `key`, if any.
pub fn take(key: &str) -> Option<OwnedFd> {
    let mut t = TABLE.lock();
    let list = t.as_mut()?.get_mut(key)?;
    (!list.is_empty()).then(|| list.remove(0))
}

/// How many inherited sockets no endpoint has taken yet.
pub fn unclaimed() -> usize {
    TABLE.lock().as_ref().map_or(0, |t| t.values().map(Vec::len).sum())
}

/// Closes the sockets no endpoint took (the new configuration dropped those listeners).
pub fn close_unclaimed() -> usize {
    TABLE.lock().take().map_or(0, |t| t.into_values().map(|v| v.len()).sum())
}
