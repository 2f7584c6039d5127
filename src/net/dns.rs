//! `getaddrinfo` and `getnameinfo` as coroutines: the system resolver runs in the loop's
//! default executor; numeric hosts resolve at once, without a thread.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::core::EventLoop;

/// One result of [`getaddrinfo`](EventLoop::getaddrinfo): asyncio's
/// `(family, type, proto, canonname, sockaddr)` tuple.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddrInfo {
    /// The address family (`libc::AF_INET` or `libc::AF_INET6`).
    pub family: i32,
    /// The socket type (`libc::SOCK_STREAM`, `libc::SOCK_DGRAM`, ...).
    pub socktype: i32,
    /// The protocol (`libc::IPPROTO_TCP`, ...).
    pub protocol: i32,
    /// The canonical name, when `AI_CANONNAME` was asked for (first result only).
    pub canonname: Option<String>,
    /// The address.
    pub addr: SocketAddr,
}

/// The filters and flags of a [`getaddrinfo`](EventLoop::getaddrinfo) call (all 0 by default:
/// any family, any type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrInfoHints {
    /// `libc::AF_INET`, `libc::AF_INET6`, or 0 for both.
    pub family: i32,
    /// `libc::SOCK_STREAM`, `libc::SOCK_DGRAM`, or 0 for both.
    pub socktype: i32,
    /// A protocol number, or 0.
    pub protocol: i32,
    /// `libc::AI_*` flags (`AI_PASSIVE`, `AI_CANONNAME`, ...).
    pub flags: i32,
}

/// asyncio's `_ipaddr_info`: a numeric host with a known socket type resolves without the
/// system resolver.
fn numeric(host: Option<&str>, port: u16, hints: &AddrInfoHints) -> Option<Vec<AddrInfo>> {
    let host = host?;
    let protocol = match hints.socktype {
        libc::SOCK_STREAM => libc::IPPROTO_TCP,
        libc::SOCK_DGRAM => libc::IPPROTO_UDP,
        _ => return None,
    };
    if hints.protocol != 0 && hints.protocol != protocol {
        return None;
    }
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = trimmed.parse().ok()?;
    let family = match ip {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    if hints.family != 0 && hints.family != family {
        return None;
    }
    Some(vec![AddrInfo {
        family,
        socktype: hints.socktype,
        protocol,
        canonname: None,
        addr: SocketAddr::new(ip, port),
    }])
}

fn gai_error(rc: i32) -> Error {
    if rc == libc::EAI_SYSTEM {
        return std::io::Error::last_os_error().into();
    }
    // SAFETY: gai_strerror returns a pointer to a static, NUL-terminated string for any code.
    let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
        .to_string_lossy()
        .into_owned();
    Error::new(ErrorKind::Io, format!("[Errno {rc}] {text}"))
        .with_source(std::io::Error::other(text))
}

/// Converts a C socket address to a `SocketAddr` (IPv4 and IPv6 only).
///
/// # Safety
/// `sa` must point to a valid socket address of at least `len` bytes.
unsafe fn to_socket_addr(sa: *const libc::sockaddr, len: libc::socklen_t) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `sa` is valid; the family field is common to all.
    let family = i32::from(unsafe { (*sa).sa_family });
    if family == libc::AF_INET && len as usize >= std::mem::size_of::<libc::sockaddr_in>() {
        // SAFETY: the family says this is a sockaddr_in and it is long enough.
        let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        Some(SocketAddr::V4(SocketAddrV4::new(
            ip,
            u16::from_be(sin.sin_port),
        )))
    } else if family == libc::AF_INET6 && len as usize >= std::mem::size_of::<libc::sockaddr_in6>()
    {
        // SAFETY: the family says this is a sockaddr_in6 and it is long enough.
        let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
        let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
        Some(SocketAddr::V6(SocketAddrV6::new(
            ip,
            u16::from_be(sin6.sin6_port),
            sin6.sin6_flowinfo,
            sin6.sin6_scope_id,
        )))
    } else {
        None
    }
}

/// The blocking system `getaddrinfo`.
fn system_getaddrinfo(
    host: Option<&str>,
    port: Option<u16>,
    hints: AddrInfoHints,
) -> Result<Vec<AddrInfo>> {
    let c_host = host
        .map(CString::new)
        .transpose()
        .map_err(|_| Error::new(ErrorKind::InvalidArgument, "host contains a NUL byte"))?;
    let c_port = port
        .map(|p| CString::new(p.to_string()))
        .transpose()
        .map_err(|_| Error::new(ErrorKind::InvalidArgument, "port contains a NUL byte"))?;
    // SAFETY: an all-zero addrinfo is the documented "no hints" value.
    let mut h: libc::addrinfo = unsafe { std::mem::zeroed() };
    h.ai_family = hints.family;
    h.ai_socktype = hints.socktype;
    h.ai_protocol = hints.protocol;
    h.ai_flags = hints.flags
        | if port.is_some() {
            libc::AI_NUMERICSERV
        } else {
            0
        };
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated and outlive the call; `h` and `res` are valid.
    let rc = unsafe {
        libc::getaddrinfo(
            c_host.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            c_port.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            &h,
            &mut res,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc));
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getaddrinfo returned, not yet freed.
        let ai = unsafe { &*cur };
        // SAFETY: ai_addr/ai_addrlen describe a valid address of this node.
        if let Some(addr) = unsafe { to_socket_addr(ai.ai_addr, ai.ai_addrlen) } {
            let canonname = if ai.ai_canonname.is_null() {
                None
            } else {
                // SAFETY: a non-null ai_canonname is a NUL-terminated string owned by the list.
                Some(
                    unsafe { CStr::from_ptr(ai.ai_canonname) }
                        .to_string_lossy()
                        .into_owned(),
                )
            };
            let entry = AddrInfo {
                family: ai.ai_family,
                socktype: ai.ai_socktype,
                protocol: ai.ai_protocol,
                canonname,
                addr,
            };
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Ok(out)
}

/// The blocking system `getnameinfo`.
fn system_getnameinfo(addr: SocketAddr, flags: i32) -> Result<(String, String)> {
    let sa = socket2::SockAddr::from(addr);
    let mut host = [0 as libc::c_char; 1025];
    let mut serv = [0 as libc::c_char; 32];
    // SAFETY: `sa` is a valid address of `sa.len()` bytes; the buffers and their lengths match.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            serv.as_mut_ptr(),
            serv.len() as libc::socklen_t,
            flags,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc));
    }
    // SAFETY: on success both buffers hold NUL-terminated strings.
    let (h, s) = unsafe { (CStr::from_ptr(host.as_ptr()), CStr::from_ptr(serv.as_ptr())) };
    Ok((
        h.to_string_lossy().into_owned(),
        s.to_string_lossy().into_owned(),
    ))
}

impl EventLoop {
    /// Resolves `host` and `port` (asyncio's `loop.getaddrinfo`). A numeric host with a
    /// stream or datagram `socktype` resolves at once; anything else runs the system resolver
    /// in the default executor. `host` `None` with `AI_PASSIVE` gives the wildcard addresses.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] with the resolver's message (`"[Errno -2] Name or service not
    /// known"`) when resolution fails; [`ErrorKind::Closed`] or
    /// [`ErrorKind::ExecutorShutdown`] when the executor cannot run it.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future abandons the lookup (a started system call finishes on
    /// its thread and is discarded).
    ///
    /// ```
    /// use asyncio::{AddrInfoHints, EventLoop};
    /// let event_loop = EventLoop::new()?;
    /// let lp = event_loop.clone();
    /// let hints = AddrInfoHints { socktype: libc::SOCK_STREAM, ..Default::default() };
    /// let infos = event_loop.run_until_complete(async move {
    ///     lp.getaddrinfo(Some("127.0.0.1"), Some(80), hints).await
    /// })??;
    /// assert_eq!(infos[0].addr, "127.0.0.1:80".parse().unwrap());
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub async fn getaddrinfo(
        &self,
        host: Option<&str>,
        port: Option<u16>,
        hints: AddrInfoHints,
    ) -> Result<Vec<AddrInfo>> {
        self.check_closed()?;
        if let Some(found) = numeric(host, port.unwrap_or(0), &hints) {
            return Ok(found);
        }
        let host = host.map(str::to_owned);
        self.run_in_executor(None, move || {
            system_getaddrinfo(host.as_deref(), port, hints)
        })?
        .await?
    }

    /// Looks up the host and service names of `addr` (asyncio's `loop.getnameinfo`), in the
    /// default executor. `flags` are `libc::NI_*` flags.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the lookup fails; [`ErrorKind::Closed`] or
    /// [`ErrorKind::ExecutorShutdown`] when the executor cannot run it.
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`getaddrinfo`](EventLoop::getaddrinfo).
    pub async fn getnameinfo(&self, addr: SocketAddr, flags: i32) -> Result<(String, String)> {
        self.check_closed()?;
        self.run_in_executor(None, move || system_getnameinfo(addr, flags))?
            .await?
    }
}
