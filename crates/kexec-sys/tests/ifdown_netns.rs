//! `take_interfaces_down` on real interfaces: in a fresh network namespace
//! (`unshare -n`, root) with a veth pair up, the test binary runs itself
//! (the `#[ignore]`d child below) and `ip` must then show both ends down and
//! `lo` still up. Needs root and iproute2, as CI has.

use std::process::Command;

const CHILD_ENV: &str = "KEXEC_SYS_IFDOWN_CHILD";

#[test]
fn interfaces_are_taken_down_in_a_namespace() {
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "set -e; ip link set lo up; ip link add v0 type veth peer name v1; \
         ip link set v0 up; ip link set v1 up; \
         {CHILD_ENV}=1 '{}' --exact ifdown_child --include-ignored --quiet; \
         ip -o link show",
        exe.display()
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("unshare runs (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "needs root and iproute2: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flags = |name: &str| {
        text.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|n| n.trim().starts_with(name))
            })
            .and_then(|l| l.split('<').nth(1))
            .and_then(|l| l.split('>').next())
            .unwrap_or_else(|| panic!("{name} not listed: {text}"))
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(flags("lo").contains(&"UP".to_owned()), "{text}");
    for veth in ["v0", "v1"] {
        assert!(!flags(veth).contains(&"UP".to_owned()), "{veth}: {text}");
    }
}

#[test]
#[ignore = "run by interfaces_are_taken_down_in_a_namespace inside a namespace"]
fn ifdown_child() {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "only inside the namespace"
    );
    kexec_sys::take_interfaces_down().unwrap();
}
