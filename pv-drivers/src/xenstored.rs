//! The store of dom0's xenstored: a tree of nodes (a value and a list
//! of permissions each) and the requests that read and change it, as
//! Xen 4.17's C xenstored answers them.
//!
//! - Paths: absolute (`/...`), or relative to the caller's
//!   `/local/domain/<id>`; only letters, digits and `-/_@`, no empty
//!   component, no trailing `/` but the root's; at most 3072 bytes
//!   (absolute) or 2048 (relative). Anything else is `EINVAL`.
//! - Permissions: the first entry names the owner and what every domain
//!   not listed may do (`n`, `r`, `w`, `b`); the others, what one domain
//!   may do. A privileged caller (dom0) and the owner may do everything.
//!   A node created by a write or mkdir inherits its parent's list, an
//!   unprivileged creator becoming its owner. A node the caller may not
//!   read is `EACCES`; a missing node is `ENOENT` unless the caller may not
//!   read its nearest existing ancestor (`EACCES`: nothing leaks).
//! - Requests ([`Store::handle`]): `READ`, `WRITE`, `MKDIR`, `RM`,
//!   `DIRECTORY`, `GET_PERMS`, `SET_PERMS`, `GET_DOMAIN_PATH`, `WATCH`,
//!   `UNWATCH`, `TRANSACTION_START`/`END`; an argument that is not a
//!   NUL-terminated string where one is due is `EINVAL`, an unknown
//!   request `EINVAL`; `INTRODUCE`, `RELEASE` and `IS_DOMAIN_INTRODUCED`
//!   for the toolstack (a release takes the domain's watches,
//!   transactions and the nodes it owns with it); `RESUME`, `SET_TARGET`,
//!   `RESET_WATCHES`, `DIRECTORY_PART` and `CONTROL` are `ENOSYS`.
//! - Quotas for unprivileged domains, Xen 4.17's defaults: 1000 nodes
//!   owned, 2048-byte values, 5 permission entries (`ENOSPC`), 128
//!   watches (`E2BIG`), 10 open transactions (`ENOSPC`).
//! - Transactions: each works on its own copy of the tree; a commit
//!   lands only if nothing it looked at (the paths it named, what lay
//!   under them, and the parents whose children it changed) changed
//!   meanwhile, else `EAGAIN`;
//!   at most 10 open per domain (`ENOSPC`). (Xen compares generation
//!   counts; this compares the nodes' contents and children, so a change
//!   undone before the commit is no conflict here.)
//! - Watches (Xen's `fire_watches`): a change of a node (write, mkdir,
//!   set_perms, rm) fires every watch on it or above it with the node's
//!   path; a removal also fires the watches on each node under it with
//!   that node's path. An event reaches a watcher that may read the node
//!   (after the change; before a removal). A watch registered with a
//!   relative path hears relative paths. A new watch fires once at once.
//!
//! Missing (the rest of #12's xenstored): the daemon around the store
//! (its connections over the store pages, outstanding-request and memory
//! limits per connection).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::xs_wire::{ty, Header, Message, ABS_PATH_MAX, REL_PATH_MAX};

/// What one domain may do with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Self::None => 'n',
            Self::Read => 'r',
            Self::Write => 'w',
            Self::Both => 'b',
        }
    }

    fn reads(self) -> bool {
        matches!(self, Self::Read | Self::Both)
    }

    fn writes(self) -> bool {
        matches!(self, Self::Write | Self::Both)
    }
}

/// One entry of a node's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    pub access: Access,
    pub domid: u16,
}

impl Perm {
    /// `n0`, `r5`, ...: `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let mut chars = s.chars();
        let access = match chars.next()? {
            'n' => Access::None,
            'r' => Access::Read,
            'w' => Access::Write,
            'b' => Access::Both,
            _ => return None,
        };
        let id = chars.as_str();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            access,
            domid: id.parse().ok()?,
        })
    }
}

impl core::fmt::Display for Perm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}{}", self.access.letter(), self.domid)
    }
}

/// The caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub domid: u16,
    pub privileged: bool,
}

/// An error a request gets, by Xen's name.
pub type XsError = &'static str;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    value: Vec<u8>,
    perms: Vec<Perm>,
}

/// The tree.
#[derive(Debug, Clone)]
pub struct Store {
    nodes: BTreeMap<String, Node>,
    watches: Vec<Watch>,
    /// Watch events waiting to go out: (domain, message).
    events: Vec<(u16, Message)>,
    /// Open transactions, by id.
    txs: BTreeMap<u32, Tx>,
    last_tx: u32,
    /// Domains introduced by the toolstack.
    introduced: BTreeSet<u16>,
}

/// A transaction: its own copy of the tree, the tree as it was when it
/// began, and every path its requests looked at or changed.
#[derive(Debug, Clone)]
struct Tx {
    domid: u16,
    view: BTreeMap<String, Node>,
    start: BTreeMap<String, Node>,
    touched: BTreeSet<String>,
}

/// Transactions one domain may have open (Xen 4.17's
/// `quota_max_transaction`).
pub const TRANSACTION_QUOTA: usize = 10;
/// Nodes one domain may own (`quota_nb_entry_per_domain`).
pub const NODE_QUOTA: usize = 1000;
/// Bytes of one node's value (`quota_max_entry_size`).
pub const NODE_SIZE_QUOTA: usize = 2048;
/// Entries of one node's permissions (`quota_nb_perms_per_node`).
pub const PERMS_QUOTA: usize = 5;

/// A registered watch.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watch {
    domid: u16,
    /// Absolute (or a special `@` path).
    path: String,
    /// Registered relative: events name paths relative to the domain's
    /// home.
    relative: bool,
    token: String,
}

/// Watches one domain may have (Xen 4.17's `quota_nb_watch_per_domain`).
pub const WATCH_QUOTA: usize = 128;

/// Whether `p` is `w` or lies under it (Xen's `is_child`).
fn is_child(p: &str, w: &str) -> bool {
    p == w || under(w, p)
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// The parent of absolute path `p` (not the root).
fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// The names of `p`'s children in `nodes`.
fn children<'a>(nodes: &'a BTreeMap<String, Node>, p: &str) -> Vec<&'a str> {
    let prefix = if p == "/" {
        String::from("/")
    } else {
        format!("{p}/")
    };
    nodes
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, _)| {
            let rest = &k[prefix.len()..];
            (!rest.is_empty() && !rest.contains('/')).then_some(rest)
        })
        .collect()
}

/// Whether `child` lies under `p` (not `p` itself).
fn under(p: &str, child: &str) -> bool {
    if p == "/" {
        return child != "/";
    }
    child.len() > p.len() && child.starts_with(p) && child.as_bytes()[p.len()] == b'/'
}

impl Store {
    /// A store with the root (owned by dom0, no access for others) and
    /// `/local/domain`.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        let root = Node {
            value: Vec::new(),
            perms: alloc::vec![Perm {
                access: Access::None,
                domid: 0,
            }],
        };
        for p in ["/", "/local", "/local/domain"] {
            nodes.insert(p.to_string(), root.clone());
        }
        Self {
            nodes,
            watches: Vec::new(),
            events: Vec::new(),
            txs: BTreeMap::new(),
            last_tx: 0,
            introduced: BTreeSet::new(),
        }
    }

    /// Nodes domain `domid` owns.
    fn owned(&self, domid: u16) -> usize {
        self.nodes
            .values()
            .filter(|n| n.perms.first().is_some_and(|o| o.domid == domid))
            .count()
    }

    /// `XS_INTRODUCE` (the toolstack, privileged: `EACCES` otherwise):
    /// domain `domid` has a store connection from now on; `@introduceDomain`
    /// fires. Introducing it again is no error (Xen rebinds its channel).
    pub fn introduce(&mut self, conn: Conn, domid: u16) -> Result<(), XsError> {
        if !conn.privileged {
            return Err("EACCES");
        }
        self.introduced.insert(domid);
        self.fire_special("@introduceDomain");
        Ok(())
    }

    /// `XS_RELEASE` (privileged): domain `domid` is gone; its watches,
    /// transactions and pending events go, and so do the nodes it owns
    /// (with what is under them); `@releaseDomain` fires. `ENOENT` if it
    /// was never introduced.
    pub fn release(&mut self, conn: Conn, domid: u16) -> Result<(), XsError> {
        if !conn.privileged {
            return Err("EACCES");
        }
        if !self.introduced.remove(&domid) {
            return Err("ENOENT");
        }
        self.forget(domid);
        self.txs.retain(|_, t| t.domid != domid);
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(k, n)| *k != "/" && n.perms.first().is_some_and(|o| o.domid == domid))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.nodes.retain(|x, _| x != &k && !under(&k, x));
        }
        self.fire_special("@releaseDomain");
        Ok(())
    }

    pub fn is_introduced(&self, domid: u16) -> bool {
        self.introduced.contains(&domid)
    }

    /// Fires the watches on special path `p` (every domain may hear of
    /// introductions and releases).
    fn fire_special(&mut self, p: &str) {
        let hit: Vec<Watch> = self
            .watches
            .iter()
            .filter(|w| w.path == p)
            .cloned()
            .collect();
        for w in &hit {
            self.event(w, p);
        }
    }

    /// `XS_TRANSACTION_START`: a new transaction of `conn`'s (its id, never
    /// 0); `ENOSPC` past [`TRANSACTION_QUOTA`] open ones.
    pub fn transaction_start(&mut self, conn: Conn) -> Result<u32, XsError> {
        let open = self.txs.values().filter(|t| t.domid == conn.domid).count();
        if !conn.privileged && open >= TRANSACTION_QUOTA {
            return Err("ENOSPC");
        }
        let mut id = self.last_tx.wrapping_add(1);
        while id == 0 || self.txs.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.last_tx = id;
        self.txs.insert(
            id,
            Tx {
                domid: conn.domid,
                view: self.nodes.clone(),
                start: self.nodes.clone(),
                touched: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    /// Runs `op` on transaction `id`'s copy of the tree (`ENOENT` if
    /// `conn` has no such transaction), recording as looked at: `path`
    /// (canonical for `conn`), everything under it before and after, and
    /// for a node missing before or after, its ancestors up to the first
    /// that exists (their children change, as Xen's generation counts
    /// would say).
    fn in_tx<R>(
        &mut self,
        conn: Conn,
        id: u32,
        path: &str,
        op: impl FnOnce(&mut Store) -> Result<R, XsError>,
    ) -> Result<R, XsError> {
        let p = Self::canonical(conn, path)?;
        let tx = self
            .txs
            .get_mut(&id)
            .filter(|t| t.domid == conn.domid)
            .ok_or("ENOENT")?;
        let mut view = Store {
            nodes: core::mem::take(&mut tx.view),
            watches: Vec::new(),
            events: Vec::new(),
            txs: BTreeMap::new(),
            last_tx: 0,
            introduced: BTreeSet::new(),
        };
        let below = |nodes: &BTreeMap<String, Node>| -> Vec<String> {
            nodes.keys().filter(|k| under(&p, k)).cloned().collect()
        };
        let existed = view.nodes.contains_key(&p);
        let mut touched = below(&view.nodes);
        let r = op(&mut view);
        touched.extend(below(&view.nodes));
        touched.push(p.clone());
        // A node that was missing: the ancestors up to the first existing
        // one (created, or what made it missing); a removal: the parent
        // (its children changed).
        if !existed || !view.nodes.contains_key(&p) {
            let mut at = p.as_str();
            while at != "/" {
                at = parent(at);
                touched.push(at.to_string());
                if existed || view.nodes.contains_key(at) {
                    break;
                }
            }
        }
        tx.view = view.nodes;
        tx.touched.extend(touched);
        r
    }

    /// `XS_TRANSACTION_END`: commits (`commit`) or drops transaction `id`.
    /// A commit whose looked-at paths changed since it began is `EAGAIN`
    /// (and the transaction is gone, as on Xen: the client starts again);
    /// otherwise its changes land and their watches fire.
    pub fn transaction_end(&mut self, conn: Conn, id: u32, commit: bool) -> Result<(), XsError> {
        let tx = match self.txs.get(&id) {
            Some(t) if t.domid == conn.domid => self.txs.remove(&id).ok_or("ENOENT")?,
            _ => return Err("ENOENT"),
        };
        if !commit {
            return Ok(());
        }
        let changed = |k: &String| {
            self.nodes.get(k) != tx.start.get(k)
                || children(&self.nodes, k) != children(&tx.start, k)
        };
        if tx.touched.iter().any(changed) {
            return Err("EAGAIN");
        }
        for k in &tx.touched {
            let (before, after) = (tx.start.get(k), tx.view.get(k));
            if before == after {
                continue;
            }
            match after {
                Some(n) => {
                    self.nodes.insert(k.clone(), n.clone());
                    let perms = n.perms.clone();
                    self.fire(k, &perms, false);
                }
                None => {
                    self.nodes.remove(k);
                    let perms = before.map(|n| n.perms.clone()).unwrap_or_default();
                    self.fire(k, &perms, true);
                }
            }
        }
        Ok(())
    }

    /// The watch events produced so far, in order, for the caller to
    /// deliver: (domain, `XS_WATCH_EVENT` message).
    pub fn take_events(&mut self) -> Vec<(u16, Message)> {
        core::mem::take(&mut self.events)
    }

    /// Queues watch `w`'s event for absolute path `p`.
    fn event(&mut self, w: &Watch, p: &str) {
        let home = format!("/local/domain/{}/", w.domid);
        let shown = match p.strip_prefix(&home) {
            Some(rel) if w.relative => rel,
            _ => p,
        };
        let mut payload = Vec::new();
        payload.extend_from_slice(shown.as_bytes());
        payload.push(0);
        payload.extend_from_slice(w.token.as_bytes());
        payload.push(0);
        if let Some(m) = Message::new(ty::WATCH_EVENT, 0, 0, &payload) {
            self.events.push((w.domid, m));
        }
    }

    /// A change at `p`: every watch on `p` or above it fires with `p`,
    /// for a watcher who may read the node with permissions `perms`
    /// (the node's after the change, or before its removal).
    fn fire(&mut self, p: &str, perms: &[Perm], exact: bool) {
        let node = Node {
            value: Vec::new(),
            perms: perms.to_vec(),
        };
        let hit: Vec<Watch> = self
            .watches
            .iter()
            .filter(|w| {
                if exact {
                    w.path == p
                } else {
                    is_child(p, &w.path)
                }
            })
            .filter(|w| {
                let c = Conn {
                    domid: w.domid,
                    privileged: w.domid == 0,
                };
                Self::access(c, &node).reads()
            })
            .cloned()
            .collect();
        for w in &hit {
            self.event(w, p);
        }
    }

    /// Fires the watches for a change of existing node `p`.
    fn changed(&mut self, p: &str) {
        let perms = self
            .nodes
            .get(p)
            .map(|n| n.perms.clone())
            .unwrap_or_default();
        self.fire(p, &perms, false);
    }

    /// `XS_WATCH`: registers `path` (relative or absolute, or
    /// `@introduceDomain` / `@releaseDomain`) with `token` for `conn`,
    /// which hears of it at once (the event follows the reply). The same
    /// path and token twice is `EEXIST`; more than [`WATCH_QUOTA`] is
    /// `E2BIG`.
    pub fn watch(&mut self, conn: Conn, path: &str, token: &str) -> Result<(), XsError> {
        let w = Self::watch_of(conn, path, token)?;
        if self.watches.contains(&w) {
            return Err("EEXIST");
        }
        let mine = self
            .watches
            .iter()
            .filter(|x| x.domid == conn.domid)
            .count();
        if !conn.privileged && mine >= WATCH_QUOTA {
            return Err("E2BIG");
        }
        self.watches.push(w);
        Ok(())
    }

    /// The registration's first event (after its reply).
    fn first_event(&mut self, conn: Conn, path: &str, token: &str) {
        if let Ok(w) = Self::watch_of(conn, path, token) {
            let p = w.path.clone();
            self.event(&w, &p);
        }
    }

    fn watch_of(conn: Conn, path: &str, token: &str) -> Result<Watch, XsError> {
        let special = matches!(path, "@introduceDomain" | "@releaseDomain");
        let abs = if special {
            path.to_string()
        } else {
            Self::canonical(conn, path)?
        };
        Ok(Watch {
            domid: conn.domid,
            path: abs,
            relative: !special && !path.starts_with('/'),
            token: token.to_string(),
        })
    }

    /// `XS_UNWATCH`: `ENOENT` for a watch `conn` does not have.
    pub fn unwatch(&mut self, conn: Conn, path: &str, token: &str) -> Result<(), XsError> {
        let w = Self::watch_of(conn, path, token)?;
        let before = self.watches.len();
        self.watches.retain(|x| x != &w);
        if self.watches.len() == before {
            return Err("ENOENT");
        }
        Ok(())
    }

    /// Everything of domain `domid`'s connection goes (its watches and
    /// their pending events): it was released or destroyed.
    pub fn forget(&mut self, domid: u16) {
        self.watches.retain(|w| w.domid != domid);
        self.events.retain(|(d, _)| *d != domid);
    }

    /// `path` as the absolute path it names for `conn`.
    pub fn canonical(conn: Conn, path: &str) -> Result<String, XsError> {
        let abs = if path.starts_with('/') {
            if path.len() > ABS_PATH_MAX {
                return Err("EINVAL");
            }
            path.to_string()
        } else {
            if path.len() > REL_PATH_MAX || path.is_empty() {
                return Err("EINVAL");
            }
            format!("/local/domain/{}/{}", conn.domid, path)
        };
        let ok_chars = abs
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_@".contains(&b));
        let ok_shape = abs == "/" || (!abs.ends_with('/') && !abs.contains("//"));
        if !ok_chars || !ok_shape || abs.contains('@') {
            return Err("EINVAL");
        }
        Ok(abs)
    }

    fn access(conn: Conn, node: &Node) -> Access {
        let Some(owner) = node.perms.first() else {
            return Access::None;
        };
        if conn.privileged || owner.domid == conn.domid {
            return Access::Both;
        }
        node.perms
            .iter()
            .skip(1)
            .find(|p| p.domid == conn.domid)
            .unwrap_or(owner)
            .access
    }

    /// The node at absolute `p` if `conn` may do `want` with it:
    /// `ENOENT` or `EACCES` as the module says.
    fn node(&self, conn: Conn, p: &str, want: fn(Access) -> bool) -> Result<&Node, XsError> {
        match self.nodes.get(p) {
            Some(n) if want(Self::access(conn, n)) => Ok(n),
            Some(_) => Err("EACCES"),
            None => Err(self.missing(conn, p)),
        }
    }

    /// Why `p` cannot be had: its nearest existing ancestor decides
    /// whether the caller may know it is missing.
    fn missing(&self, conn: Conn, p: &str) -> XsError {
        let mut up = parent(p);
        loop {
            if let Some(n) = self.nodes.get(up) {
                return if Self::access(conn, n).reads() {
                    "ENOENT"
                } else {
                    "EACCES"
                };
            }
            if up == "/" {
                return "ENOENT";
            }
            up = parent(up);
        }
    }

    pub fn read(&self, conn: Conn, path: &str) -> Result<Vec<u8>, XsError> {
        let p = Self::canonical(conn, path)?;
        Ok(self.node(conn, &p, Access::reads)?.value.clone())
    }

    /// Creates `p` and any missing ancestor (each inheriting its parent's
    /// permissions, an unprivileged creator owning it), if the caller may
    /// write the nearest existing ancestor.
    fn create(&mut self, conn: Conn, p: &str, value: &[u8]) -> Result<(), XsError> {
        let mut missing = Vec::new();
        let mut at = p;
        while !self.nodes.contains_key(at) {
            missing.push(at.to_string());
            at = parent(at);
        }
        let base = self.node(conn, at, Access::writes)?;
        let mut perms = base.perms.clone();
        if !conn.privileged {
            if let Some(owner) = perms.first_mut() {
                owner.domid = conn.domid;
            }
            if self.owned(conn.domid) + missing.len() > NODE_QUOTA {
                return Err("ENOSPC");
            }
        }
        for path in missing.into_iter().rev() {
            let v = if path == p {
                value.to_vec()
            } else {
                Vec::new()
            };
            self.nodes.insert(
                path,
                Node {
                    value: v,
                    perms: perms.clone(),
                },
            );
        }
        Ok(())
    }

    pub fn write(&mut self, conn: Conn, path: &str, value: &[u8]) -> Result<(), XsError> {
        let p = Self::canonical(conn, path)?;
        if !conn.privileged && value.len() > NODE_SIZE_QUOTA {
            return Err("ENOSPC");
        }
        match self.node(conn, &p, Access::writes) {
            Ok(_) => {
                if let Some(n) = self.nodes.get_mut(&p) {
                    n.value = value.to_vec();
                }
            }
            Err("ENOENT") => self.create(conn, &p, value)?,
            Err(e) => return Err(e),
        }
        self.changed(&p);
        Ok(())
    }

    pub fn mkdir(&mut self, conn: Conn, path: &str) -> Result<(), XsError> {
        let p = Self::canonical(conn, path)?;
        match self.node(conn, &p, Access::writes) {
            Ok(_) => Ok(()),
            Err("ENOENT") => {
                self.create(conn, &p, &[])?;
                self.changed(&p);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Removes `path` and everything under it. A missing node whose parent
    /// exists is no error (as Xen's); the root cannot go.
    pub fn rm(&mut self, conn: Conn, path: &str) -> Result<(), XsError> {
        let p = Self::canonical(conn, path)?;
        match self.node(conn, &p, Access::writes) {
            Ok(_) if p == "/" => Err("EINVAL"),
            Ok(_) => {
                let gone: Vec<(String, Vec<Perm>)> = self
                    .nodes
                    .iter()
                    .filter(|(k, _)| *k == &p || under(&p, k))
                    .map(|(k, n)| (k.clone(), n.perms.clone()))
                    .collect();
                self.nodes.retain(|k, _| k != &p && !under(&p, k));
                // The removed nodes' own watches, then the node's and
                // those above it.
                for (k, perms) in gone.iter().filter(|(k, _)| *k != p) {
                    self.fire(k, perms, true);
                }
                if let Some((_, perms)) = gone.iter().find(|(k, _)| *k == p) {
                    self.fire(&p, perms, false);
                }
                Ok(())
            }
            Err("ENOENT") if self.nodes.contains_key(parent(&p)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The names of `path`'s children, in order.
    pub fn directory(&self, conn: Conn, path: &str) -> Result<Vec<String>, XsError> {
        let p = Self::canonical(conn, path)?;
        self.node(conn, &p, Access::reads)?;
        Ok(children(&self.nodes, &p)
            .into_iter()
            .map(ToString::to_string)
            .collect())
    }

    pub fn get_perms(&self, conn: Conn, path: &str) -> Result<Vec<Perm>, XsError> {
        let p = Self::canonical(conn, path)?;
        Ok(self.node(conn, &p, Access::reads)?.perms.clone())
    }

    /// Replaces `path`'s permissions: the owner or a privileged caller
    /// only (`EACCES`), and an unprivileged owner cannot give the node
    /// away (`EPERM`); no entry is `EINVAL`.
    pub fn set_perms(&mut self, conn: Conn, path: &str, perms: &[Perm]) -> Result<(), XsError> {
        let p = Self::canonical(conn, path)?;
        let node = self.node(conn, &p, Access::writes)?;
        let owner = node.perms.first().map_or(0, |o| o.domid);
        let Some(first) = perms.first() else {
            return Err("EINVAL");
        };
        if !conn.privileged && owner != conn.domid {
            return Err("EACCES");
        }
        if !conn.privileged && first.domid != owner {
            return Err("EPERM");
        }
        if !conn.privileged && perms.len() > PERMS_QUOTA {
            return Err("ENOSPC");
        }
        if let Some(n) = self.nodes.get_mut(&p) {
            n.perms = perms.to_vec();
        }
        self.changed(&p);
        Ok(())
    }

    /// The answer to request `req` from `conn`: a reply of the same type
    /// (same `req_id` and `tx_id`), or `XS_ERROR` with the error's name.
    /// The watch events the request caused are queued: the caller sends
    /// the reply first, then [`take_events`](Self::take_events)' messages
    /// (as Xen, a new watch's first event follows its reply).
    pub fn handle(&mut self, conn: Conn, req: &Message) -> Message {
        let h = req.header;
        // A reply too long for one message (a huge directory) is E2BIG.
        let reply = |ty: u32, payload: &[u8]| {
            Message::new(ty, h.req_id, h.tx_id, payload)
                .or_else(|| Message::new(ty::ERROR, h.req_id, h.tx_id, b"E2BIG\0"))
                .unwrap_or(Message {
                    header: h,
                    payload: Vec::new(),
                })
        };
        match self.answer(conn, h, &req.payload) {
            Ok(payload) => reply(h.type_, &payload),
            Err(e) => {
                let mut p = e.as_bytes().to_vec();
                p.push(0);
                reply(ty::ERROR, &p)
            }
        }
    }

    fn answer(&mut self, conn: Conn, h: Header, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let id = h.tx_id;
        match h.type_ {
            ty::TRANSACTION_START => {
                if id != 0 || args(payload)?.as_slice() != [""] {
                    return Err(if id != 0 { "EBUSY" } else { "EINVAL" });
                }
                let t = self.transaction_start(conn)?;
                let mut out = format!("{t}").into_bytes();
                out.push(0);
                return Ok(out);
            }
            ty::TRANSACTION_END => {
                let commit = match one_arg(payload)? {
                    "T" => true,
                    "F" => false,
                    _ => return Err("EINVAL"),
                };
                return self
                    .transaction_end(conn, id, commit)
                    .map(|()| b"OK\0".to_vec());
            }
            ty::READ
            | ty::WRITE
            | ty::MKDIR
            | ty::RM
            | ty::DIRECTORY
            | ty::GET_PERMS
            | ty::SET_PERMS
                if id != 0 =>
            {
                let path = first_string(payload)?;
                let kind = h.type_;
                return self.in_tx(conn, id, &path, |view| {
                    view.answer_plain(conn, kind, payload)
                });
            }
            _ => {}
        }
        self.answer_plain(conn, h.type_, payload)
    }

    /// [`answer`](Self::answer) of a request outside any transaction.
    fn answer_plain(&mut self, conn: Conn, kind: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let ok = || b"OK\0".to_vec();
        let joined = |items: Vec<String>| {
            let mut out = Vec::new();
            for i in items {
                out.extend_from_slice(i.as_bytes());
                out.push(0);
            }
            out
        };
        match kind {
            ty::READ => self.read(conn, one_arg(payload)?),
            ty::WRITE => {
                let nul = payload.iter().position(|&b| b == 0).ok_or("EINVAL")?;
                let path = core::str::from_utf8(&payload[..nul]).map_err(|_| "EINVAL")?;
                self.write(conn, path, &payload[nul + 1..]).map(|()| ok())
            }
            ty::MKDIR => self.mkdir(conn, one_arg(payload)?).map(|()| ok()),
            ty::RM => self.rm(conn, one_arg(payload)?).map(|()| ok()),
            ty::DIRECTORY => self.directory(conn, one_arg(payload)?).map(joined),
            ty::GET_PERMS => self
                .get_perms(conn, one_arg(payload)?)
                .map(|ps| joined(ps.iter().map(ToString::to_string).collect())),
            ty::SET_PERMS => {
                let args = args(payload)?;
                let (path, perms) = args.split_first().ok_or("EINVAL")?;
                let perms = perms
                    .iter()
                    .map(|s| Perm::parse(s).ok_or("EINVAL"))
                    .collect::<Result<Vec<_>, _>>()?;
                self.set_perms(conn, path, &perms).map(|()| ok())
            }
            ty::GET_DOMAIN_PATH => {
                let id: u16 = one_arg(payload)?.parse().map_err(|_| "EINVAL")?;
                let mut p = format!("/local/domain/{id}").into_bytes();
                p.push(0);
                Ok(p)
            }
            ty::WATCH => {
                let [path, token] = args(payload)?[..] else {
                    return Err("EINVAL");
                };
                self.watch(conn, path, token)?;
                // Queued: it goes out after the reply (see `handle`).
                self.first_event(conn, path, token);
                Ok(ok())
            }
            ty::UNWATCH => {
                let [path, token] = args(payload)?[..] else {
                    return Err("EINVAL");
                };
                self.unwatch(conn, path, token).map(|()| ok())
            }
            ty::INTRODUCE => {
                // domid, the store page's frame, its event channel.
                let a = args(payload)?;
                let [id, frame, port] = a.as_slice() else {
                    return Err("EINVAL");
                };
                let ok_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !ok_num(frame) || !ok_num(port) {
                    return Err("EINVAL");
                }
                self.introduce(conn, id.parse().map_err(|_| "EINVAL")?)
                    .map(|()| ok())
            }
            ty::RELEASE => {
                let id = one_arg(payload)?.parse().map_err(|_| "EINVAL")?;
                self.release(conn, id).map(|()| ok())
            }
            ty::IS_DOMAIN_INTRODUCED => {
                let id = one_arg(payload)?.parse().map_err(|_| "EINVAL")?;
                Ok(if self.is_introduced(id) {
                    b"T\0"
                } else {
                    b"F\0"
                }
                .to_vec())
            }
            ty::RESUME | ty::SET_TARGET | ty::RESET_WATCHES | ty::DIRECTORY_PART | ty::CONTROL => {
                Err("ENOSYS")
            }
            _ => Err("EINVAL"),
        }
    }
}

/// The payload's NUL-terminated strings (the payload must end in NUL).
fn args(payload: &[u8]) -> Result<Vec<&str>, XsError> {
    let body = payload.strip_suffix(&[0]).ok_or("EINVAL")?;
    body.split(|&b| b == 0)
        .map(|s| core::str::from_utf8(s).map_err(|_| "EINVAL"))
        .collect()
}

/// The payload's first NUL-terminated string (the path of a request
/// that names one).
fn first_string(payload: &[u8]) -> Result<String, XsError> {
    let nul = payload.iter().position(|&b| b == 0).ok_or("EINVAL")?;
    core::str::from_utf8(&payload[..nul])
        .map(ToString::to_string)
        .map_err(|_| "EINVAL")
}

/// The payload's one NUL-terminated string (Xen's `onearg`).
fn one_arg(payload: &[u8]) -> Result<&str, XsError> {
    match args(payload)?.as_slice() {
        [one] => Ok(one),
        _ => Err("EINVAL"),
    }
}

pub mod daemon;
pub mod toolstack;

#[cfg(test)]
mod tests;
