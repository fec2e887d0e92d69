//! os-release(5) text, as a UKI's `.osrel` section carries it, read as
//! systemd-boot reads it (`boot_entry_add_type2()` in src/boot/boot.c:
//! `KEY=value` lines of `super::lines`, quotes removed, no escapes), and
//! the name, version and sort key an entry takes from it
//! (`bootspec_pick_name_version_sort_key()` in src/fundamental/bootspec.c).

use super::lines;

/// The os-release fields a boot entry uses (the last line of each counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// `IMAGE_ID`.
    pub image_id: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
    /// `ID`.
    pub id: Option<String>,
    /// `IMAGE_VERSION`.
    pub image_version: Option<String>,
    /// `VERSION`.
    pub version: Option<String>,
    /// `VERSION_ID`.
    pub version_id: Option<String>,
    /// `BUILD_ID`.
    pub build_id: Option<String>,
}

/// What an entry is called, its version and sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    /// `PRETTY_NAME`, else `IMAGE_ID`, `NAME`, `ID`.
    pub title: String,
    /// `IMAGE_VERSION`, else `VERSION`, `VERSION_ID`, `BUILD_ID`.
    pub version: Option<String>,
    /// `IMAGE_ID`, else `ID`.
    pub sort_key: Option<String>,
}

impl OsRelease {
    /// Reads the fields from os-release text.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for kv in lines::key_values(text, &['=']) {
            let slot = match kv.key {
                "PRETTY_NAME" => &mut out.pretty_name,
                "IMAGE_ID" => &mut out.image_id,
                "NAME" => &mut out.name,
                "ID" => &mut out.id,
                "IMAGE_VERSION" => &mut out.image_version,
                "VERSION" => &mut out.version,
                "VERSION_ID" => &mut out.version_id,
                "BUILD_ID" => &mut out.build_id,
                _ => continue,
            };
            *slot = Some(kv.value.to_owned());
        }
        out
    }

    /// The title, version and sort key; `None` without any name field
    /// (systemd skips such a UKI).
    pub fn pick(&self) -> Option<Picked> {
        let first = |fields: &[&Option<String>]| fields.iter().find_map(|f| (*f).clone());
        Some(Picked {
            title: first(&[&self.pretty_name, &self.image_id, &self.name, &self.id])?,
            version: first(&[
                &self.image_version,
                &self.version,
                &self.version_id,
                &self.build_id,
            ]),
            sort_key: first(&[&self.image_id, &self.id]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arch Linux's /etc/os-release, which mkinitcpio puts in its UKIs.
    const ARCH: &str =
        "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n\
        ANSI_COLOR=\"38;2;23;147;209\"\nHOME_URL=\"https://archlinux.org/\"\nLOGO=archlinux-logo\n";

    #[test]
    fn arch_is_named_by_pretty_name_versioned_by_build_id() {
        let picked = OsRelease::parse(ARCH).pick().unwrap();
        assert_eq!(
            picked,
            Picked {
                title: "Arch Linux".into(),
                version: Some("rolling".into()),
                sort_key: Some("arch".into()),
            }
        );
    }

    #[test]
    fn fallbacks_in_systemd_order() {
        let os = OsRelease::parse("ID=fedora\nVERSION_ID=40\nVERSION=\"40 (Server Edition)\"\n");
        let p = os.pick().unwrap();
        assert_eq!(p.title, "fedora");
        assert_eq!(p.version.as_deref(), Some("40 (Server Edition)"));
        let os = OsRelease::parse("IMAGE_ID=appliance\nIMAGE_VERSION=7\nNAME=X\nID=x\n");
        let p = os.pick().unwrap();
        assert_eq!(
            (p.title.as_str(), p.sort_key.as_deref()),
            ("appliance", Some("appliance"))
        );
        assert_eq!(p.version.as_deref(), Some("7"));
        let p = OsRelease::parse("ID=foo\nNAME=Foo\nBUILD_ID=b\nVERSION_ID=7\n").pick();
        assert_eq!(p.as_ref().map(|p| p.title.as_str()), Some("Foo"));
        assert_eq!(p.and_then(|p| p.version), Some("7".into()));
        assert_eq!(OsRelease::parse("VERSION=1\n").pick(), None);
        assert_eq!(OsRelease::parse("").pick(), None);
    }
}
