//! The choice of system call and the explanations, on every branch.

use std::path::Path;

use kexec_core::kernel::KernelFormat;
use kexec_core::purgatory::PurgatoryOptions;
use kexec_sys::{Error, PermissionReason};

use super::*;

const OPEN: KexecState = KexecState {
    lockdown: Some(Lockdown::None),
    load_disabled: Some(false),
};
const LOCKED: KexecState = KexecState {
    lockdown: Some(Lockdown::Integrity),
    load_disabled: Some(false),
};

/// Hints as on a live arm64 machine.
fn arm64() -> Situation {
    Situation {
        live: true,
        arch: Some("aarch64".into()),
        creds: Default::default(),
    }
}

const NONE: ImageFacts = ImageFacts {
    legacy: false,
    uki_dtb: false,
};
const LEGACY: ImageFacts = ImageFacts {
    legacy: true,
    uki_dtb: false,
};

fn input() -> PlanInput<'static> {
    PlanInput::default()
}

fn image(decoded: bool, signed: bool) -> FileImage {
    FileImage {
        format: if decoded {
            KernelFormat::Gzip
        } else {
            KernelFormat::Image
        },
        decoded: decoded.then(Vec::new),
        signed: Some(signed),
        legacy: false,
        uki: UkiParts::default(),
    }
}

#[test]
fn lockdown_files_parse_to_the_bracketed_mode() {
    assert_eq!(
        parse_lockdown("none [integrity] confidentiality\n"),
        Some(Lockdown::Integrity)
    );
    assert_eq!(
        parse_lockdown("[none] integrity confidentiality\n"),
        Some(Lockdown::None)
    );
    assert_eq!(
        parse_lockdown("none integrity [confidentiality]\n"),
        Some(Lockdown::Confidentiality)
    );
    assert_eq!(parse_lockdown("none integrity confidentiality\n"), None);
    assert_eq!(parse_lockdown("[bogus]"), None);
    assert_eq!(parse_lockdown(""), None);
    assert!(!OPEN.locked_down());
    assert!(LOCKED.locked_down());
    let conf = KexecState {
        lockdown: Some(Lockdown::Confidentiality),
        ..OPEN
    };
    assert!(conf.locked_down());
    let unknown = KexecState {
        lockdown: None,
        load_disabled: None,
    };
    assert!(!unknown.locked_down());
    assert_eq!(
        unknown.describe(),
        "lockdown: unknown (no /sys/kernel/security/lockdown); kexec_load_disabled: unknown"
    );
    assert_eq!(
        KexecState {
            load_disabled: Some(true),
            ..LOCKED
        }
        .describe(),
        "lockdown: integrity; kexec_load_disabled: 1 (every kexec load refused until reboot)"
    );
}

#[test]
fn the_state_is_read_from_the_sysroot() {
    let dir = test_assets::synthetic::scratch("kfile-state");
    std::fs::create_dir_all(dir.join("sys/kernel/security")).unwrap();
    std::fs::create_dir_all(dir.join("proc/sys/kernel")).unwrap();
    std::fs::write(
        dir.join(sysroot::LOCKDOWN),
        "none [integrity] confidentiality\n",
    )
    .unwrap();
    std::fs::write(dir.join(sysroot::KEXEC_LOAD_DISABLED), "1\n").unwrap();
    assert_eq!(
        KexecState::read(&Sysroot::at(&dir)),
        KexecState {
            lockdown: Some(Lockdown::Integrity),
            load_disabled: Some(true),
        }
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        KexecState::read(&Sysroot::at(&dir)),
        KexecState {
            lockdown: None,
            load_disabled: None,
        }
    );
}

#[test]
fn explicit_choices_are_kept() {
    let d = decide(Call::KexecLoad, &input(), &LOCKED, NONE);
    assert_eq!(d.route, Route::KexecLoad);
    let d = decide(Call::KexecFileLoad, &input(), &OPEN, LEGACY);
    assert_eq!(d.route, Route::KexecFileLoad { fallback: false });
}

#[test]
fn auto_prefers_the_file_call_and_falls_back_only_when_not_locked_down() {
    let d = decide(Call::Auto, &input(), &OPEN, NONE);
    assert_eq!(d.route, Route::KexecFileLoad { fallback: true });
    let unknown = KexecState {
        lockdown: None,
        load_disabled: None,
    };
    assert_eq!(
        decide(Call::Auto, &input(), &unknown, NONE).route,
        Route::KexecFileLoad { fallback: true }
    );
    let d = decide(Call::Auto, &input(), &LOCKED, NONE);
    assert_eq!(d.route, Route::KexecFileLoad { fallback: false });
    assert!(d.why.contains("locked down (integrity)"), "{}", d.why);
}

#[test]
fn options_only_kexec_load_honours_choose_it() {
    let dtb = PlanInput {
        dtb: Some(Path::new("board.dtb")),
        ..input()
    };
    let d = decide(Call::Auto, &dtb, &OPEN, NONE);
    assert_eq!(d.route, Route::KexecLoad);
    assert!(d.why.contains("--dtb"), "{}", d.why);
    let mut no_verify = input();
    no_verify.purgatory.no_verify = true;
    let d = decide(Call::Auto, &no_verify, &LOCKED, NONE);
    assert_eq!(d.route, Route::KexecLoad);
    assert!(d.why.contains("-i"), "{}", d.why);
    for switch in [
        PurgatoryOptions {
            force_soft_sha256: true,
            ..PurgatoryOptions::default()
        },
        PurgatoryOptions {
            no_caches: true,
            ..PurgatoryOptions::default()
        },
    ] {
        let i = PlanInput {
            purgatory: switch,
            ..input()
        };
        assert_eq!(decide(Call::Auto, &i, &OPEN, NONE).route, Route::KexecLoad);
    }
    let window = PlanInput {
        window: crate::plan_input::MemWindow {
            min: 0x4000_0000,
            max: u64::MAX,
        },
        ..input()
    };
    let d = decide(Call::Auto, &window, &OPEN, NONE);
    assert_eq!(d.route, Route::KexecLoad);
    assert!(d.why.contains("--mem-min"), "{}", d.why);
    let serial = PlanInput {
        serial: Some("ttyAMA0"),
        ..input()
    };
    let d = decide(Call::Auto, &serial, &OPEN, NONE);
    assert_eq!(d.route, Route::KexecLoad);
    assert!(d.why.contains("--serial"), "{}", d.why);
    // -s keeps kexec_file_load whatever the options.
    assert_eq!(
        decide(Call::KexecFileLoad, &dtb, &OPEN, NONE).route,
        Route::KexecFileLoad { fallback: false }
    );
}

#[test]
fn a_legacy_image_goes_to_kexec_load_unless_locked_down() {
    let d = decide(Call::Auto, &input(), &OPEN, LEGACY);
    assert_eq!(d.route, Route::KexecLoad);
    assert!(d.why.contains("image_size 0"), "{}", d.why);
    assert_eq!(
        decide(Call::Auto, &input(), &LOCKED, LEGACY).route,
        Route::KexecFileLoad { fallback: false }
    );
}

#[test]
fn a_uki_with_a_dtb_goes_to_kexec_load_unless_locked_down_or_given_dtb() {
    let uki = ImageFacts {
        legacy: false,
        uki_dtb: true,
    };
    let d = decide(Call::Auto, &input(), &OPEN, uki);
    assert_eq!(d.route, Route::KexecLoad);
    assert!(d.why.contains("the UKI carries a .dtb"), "{}", d.why);
    assert_eq!(
        decide(Call::Auto, &input(), &LOCKED, uki).route,
        Route::KexecFileLoad { fallback: false }
    );
    assert_eq!(
        decide(Call::KexecFileLoad, &input(), &OPEN, uki).route,
        Route::KexecFileLoad { fallback: false }
    );
    let mut img = image(true, false);
    img.uki.dtb = Some(vec![0xd0, 0x0d, 0xfe, 0xed]);
    assert_eq!(img.facts(), uki);
    assert_eq!(image(false, false).facts(), NONE);
}

#[test]
fn only_a_missing_file_loader_falls_back() {
    assert!(may_fall_back(&Error::NotSupported("_FILE")));
    assert!(may_fall_back(&Error::UnknownImageFormat));
    for e in [
        Error::PermissionDenied(PermissionReason::Lockdown),
        Error::PermissionDenied(PermissionReason::MissingCapability),
        Error::SignatureRejected("EKEYREJECTED"),
        Error::InvalidArgument,
        Error::Busy,
        Error::OutOfMemory,
    ] {
        assert!(!may_fall_back(&e), "{e:?}");
    }
}

#[test]
fn lockdown_refusals_name_the_signature_problem() {
    let path = Path::new("/boot/Image");
    let e = Error::PermissionDenied(PermissionReason::Lockdown);
    let f = explain_file_failure(&e, path, &image(false, false), &LOCKED, false, &arm64());
    assert_eq!(f.code, crate::failure::EXIT_SYSTEM);
    assert_eq!(f.subject, "/boot/Image");
    assert_eq!(
        f.problem,
        "the kernel is locked down (integrity) and did not accept the image's signature: it \
         has no PE (Authenticode) signature; not falling back to kexec_load, which lockdown \
         refuses too"
    );
    assert!(f.hint.starts_with("sign the Image (sbsign)"), "{}", f.hint);
    let f = explain_file_failure(&e, path, &image(false, true), &LOCKED, false, &arm64());
    assert!(
        f.problem
            .contains("its PE signature is not from a key the kernel trusts"),
        "{}",
        f.problem
    );
    assert!(f.hint.contains("CONFIG_SYSTEM_TRUSTED_KEYS"), "{}", f.hint);
    let f = explain_file_failure(&e, path, &image(true, true), &LOCKED, false, &arm64());
    assert!(
        f.problem.contains(
            "it is a gzip-compressed Image, which kexec decompresses: a decompressed Image \
             carries no PE signature"
        ),
        "{}",
        f.problem
    );
    assert!(
        f.hint.starts_with("give the signed plain Image"),
        "{}",
        f.hint
    );
}

#[test]
fn other_refusals_are_explained_for_the_situation() {
    let path = Path::new("Image");
    let img = image(false, false);
    let f = explain_file_failure(
        &Error::SignatureRejected("ENOKEY: x"),
        path,
        &img,
        &OPEN,
        false,
        &arm64(),
    );
    assert!(
        f.problem
            .contains("enforces kexec signatures and rejected this image (ENOKEY: x)"),
        "{}",
        f.problem
    );
    assert!(f.problem.contains("not falling back"), "{}", f.problem);
    let open = explain_file_failure(
        &Error::NotSupported("_FILE"),
        path,
        &img,
        &OPEN,
        false,
        &arm64(),
    );
    assert_eq!(
        open.problem,
        "this kernel lacks kexec_file_load (built without CONFIG_KEXEC_FILE)"
    );
    assert!(open.hint.starts_with("use -c"), "{}", open.hint);
    let locked = explain_file_failure(
        &Error::NotSupported("_FILE"),
        path,
        &img,
        &LOCKED,
        false,
        &arm64(),
    );
    assert!(locked.hint.starts_with("under lockdown"), "{}", locked.hint);
    let f = explain_file_failure(
        &Error::UnknownImageFormat,
        path,
        &img,
        &OPEN,
        false,
        &arm64(),
    );
    assert!(
        f.problem.contains("does not take this arm64 Image"),
        "{}",
        f.problem
    );
    let f = explain_file_failure(
        &Error::UnknownImageFormat,
        path,
        &img,
        &LOCKED,
        false,
        &arm64(),
    );
    assert!(f.hint.starts_with("under lockdown"), "{}", f.hint);
    let f = explain_file_failure(&Error::InvalidArgument, path, &img, &OPEN, false, &arm64());
    assert!(f.problem.contains("image_size 0"), "{}", f.problem);
    assert!(f.hint.starts_with("try -c"), "{}", f.hint);
    let f = explain_file_failure(
        &Error::InvalidArgument,
        path,
        &img,
        &LOCKED,
        false,
        &arm64(),
    );
    assert!(f.hint.starts_with("under lockdown"), "{}", f.hint);
    let f = explain_file_failure(&Error::Busy, path, &img, &OPEN, false, &arm64());
    assert_eq!(f.subject, "kexec_file_load");
    // On a machine that is not arm64, a missing call or loader says so.
    let x86 = Situation {
        arch: Some("x86_64".into()),
        ..arm64()
    };
    for e in [Error::NotSupported("_FILE"), Error::UnknownImageFormat] {
        let f = explain_file_failure(&e, path, &img, &OPEN, false, &x86);
        assert!(
            f.hint.starts_with("this is an x86_64 machine, not arm64"),
            "{}",
            f.hint
        );
    }
}

#[test]
fn a_plain_image_is_passed_as_itself_and_a_compressed_one_in_a_memfd() {
    let dir = test_assets::synthetic::scratch("kfile-inspect");
    std::fs::create_dir_all(&dir).unwrap();
    let plain = test_assets::synthetic::synthetic_image(8192, 0x20_0000, 0b0010, 3);
    let path = dir.join("Image");
    std::fs::write(&path, &plain).unwrap();
    let img = inspect(&path).unwrap();
    assert_eq!(
        (img.format.clone(), img.decoded.is_none()),
        (KernelFormat::Image, true)
    );
    assert_eq!(
        img.signed, None,
        "a plain Image is read only up to its header"
    );
    assert!(!img.legacy);
    assert_eq!(img.with_signature(&path).signed, Some(false));
    let gz_path = dir.join("Image.gz");
    let status = std::process::Command::new("gzip")
        .args(["-k", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let img = inspect(&gz_path).unwrap();
    assert_eq!(img.format, KernelFormat::Gzip);
    assert_eq!(img.signed, Some(false));
    assert_eq!(img.signed, Some(false));
    assert!(img.decoded.as_deref() == Some(plain.as_slice()));
    use std::io::Read;
    let mut back = Vec::new();
    img.open(&gz_path).unwrap().read_to_end(&mut back).unwrap();
    assert!(
        back == plain,
        "the memfd holds the decompressed Image from offset 0"
    );
    let legacy = test_assets::synthetic::synthetic_image(8192, 0, 0, 3);
    std::fs::write(&path, &legacy).unwrap();
    assert!(inspect(&path).unwrap().legacy);
    std::fs::write(&path, b"not a kernel").unwrap();
    assert_eq!(
        inspect(&path).unwrap_err().code,
        crate::failure::EXIT_BAD_INPUT
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        inspect(&path).unwrap_err().code,
        crate::failure::EXIT_BAD_INPUT
    );
}

#[test]
fn inspect_finds_a_pre_3_17_image_plain_or_compressed() {
    use std::io::Write;
    let dir = test_assets::synthetic::scratch("kfile-inspect-legacy");
    for (image_size, legacy) in [(0u64, true), (20 << 20, false)] {
        let image = test_assets::synthetic::synthetic_image(1 << 16, image_size, 0b1010, 7);
        let plain = dir.join(format!("Image-{image_size}"));
        std::fs::write(&plain, &image).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image).unwrap();
        let packed = dir.join(format!("Image-{image_size}.gz"));
        std::fs::write(&packed, gz.finish().unwrap()).unwrap();
        for path in [&plain, &packed] {
            let facts = inspect(path).unwrap();
            assert_eq!(facts.legacy, legacy, "{}", path.display());
        }
    }
}

#[test]
fn memfd_hints_by_error() {
    use std::io::{Error, ErrorKind};
    // ENOSYS is ErrorKind::Unsupported.
    let enosys = Error::from_raw_os_error(38);
    assert!(memfd_hint(&enosys).contains("CONFIG_MEMFD_CREATE"));
    assert!(memfd_hint(&Error::from(ErrorKind::OutOfMemory)).starts_with("out of memory"));
    assert!(memfd_hint(&Error::from(ErrorKind::Other)).contains("plain Image"));
}

/// A signed Debian Image is known as signed from its headers alone: the
/// dry run and the failure messages read 64 KiB of it, not 30 MB.
#[test]
fn a_signed_image_is_known_from_its_headers() {
    for k in test_assets::debian_kernels() {
        let img = inspect(&k.image).unwrap();
        assert_eq!(img.signed, None, "{}", k.version);
        assert_eq!(
            img.with_signature(&k.image).signed,
            Some(true),
            "{}: Debian signs its arm64 Images",
            k.version
        );
    }
}
