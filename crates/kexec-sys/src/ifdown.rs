//! Taking network interfaces down before `kexec -e`/`-f`, as kexec-tools'
//! `ifdown()` (kexec/ifdown.c) does: every interface but `lo` and alias
//! names (`eth0:1`), traffic shapers (`shaper*`) first, by clearing `IFF_UP`
//! with `SIOCSIFFLAGS` on an `AF_INET` datagram socket. A NIC that is down
//! has stopped its DMA before the new kernel starts, whatever its driver's
//! shutdown hook does.

use std::ffi::CStr;
use std::io;

// The ioctl request type is `c_ulong` in glibc and `c_int` in musl; both
// numbers fit either.
#[allow(clippy::unnecessary_cast, clippy::cast_possible_truncation)]
const SIOCGIFFLAGS: libc::Ioctl = libc::SIOCGIFFLAGS as libc::Ioctl;
#[allow(clippy::unnecessary_cast, clippy::cast_possible_truncation)]
const SIOCSIFFLAGS: libc::Ioctl = libc::SIOCSIFFLAGS as libc::Ioctl;

/// `IFF_UP` as the `short` `ifr_flags` holds it (the value is 1).
const IFF_UP: libc::c_short = 1;
const _: () = assert!(libc::IFF_UP == 1);

/// The interfaces to take down, in order, from the names the system lists:
/// shapers first, then the rest, never `lo` or an alias.
pub fn ifdown_order<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let eligible = |n: &&&str| **n != "lo" && !n.contains(':');
    let shapers = names
        .iter()
        .filter(eligible)
        .filter(|n| n.starts_with("shaper"));
    let others = names
        .iter()
        .filter(eligible)
        .filter(|n| !n.starts_with("shaper"));
    shapers.chain(others).copied().collect()
}

/// The names `if_nameindex(3)` lists.
fn interface_names() -> io::Result<Vec<String>> {
    // SAFETY: if_nameindex takes no arguments and returns a heap array
    // terminated by an entry with index 0, or NULL on failure.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    let mut entry = list;
    // SAFETY: `entry` walks the array if_nameindex returned, stopping at
    // the terminating zero-index entry; each `if_name` is a NUL-terminated
    // string owned by the array, copied before the array is freed once.
    unsafe {
        while (*entry).if_index != 0 {
            names.push(
                CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    Ok(names)
}

/// Clear `IFF_UP` on `name` through the datagram socket `fd`.
fn take_down(fd: libc::c_int, name: &str) -> io::Result<()> {
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "name too long"));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid, NUL-terminated ifreq the kernel reads and
    // (for SIOCGIFFLAGS) writes; `fd` is an open socket.
    if unsafe { libc::ioctl(fd, SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags &= !IFF_UP };
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(fd, SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Take every interface but `lo` and aliases down (see the module doc).
/// Stops at the first error, naming the interface, as kexec-tools does;
/// the caller decides whether to go on (kexec-tools does).
pub fn take_interfaces_down() -> io::Result<()> {
    let names = interface_names()?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // SAFETY: socket(2) with constant arguments; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let result = ifdown_order(&refs).into_iter().try_for_each(|name| {
        take_down(fd, name).map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))
    });
    // SAFETY: `fd` is the socket opened above, closed once.
    unsafe { libc::close(fd) };
    result
}

#[cfg(test)]
mod tests {
    use super::ifdown_order;

    #[test]
    fn lo_and_aliases_are_left_up_and_shapers_go_first() {
        assert_eq!(
            ifdown_order(&["lo", "eth0", "eth0:1", "shaper0", "wlan0", "shaperx"]),
            vec!["shaper0", "shaperx", "eth0", "wlan0"]
        );
        assert!(ifdown_order(&["lo"]).is_empty());
    }
}
