//! Kernels under test: Debian packages fetched with `apt-get download` and
//! cached with their checksum, a bzImage given by path, or the host itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A `--kernel` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// The newest Debian package whose name starts with `prefix` and ends with `suffix`.
    Debian {
        label: String,
        prefix: &'static str,
        suffix: &'static str,
    },
    /// A kernel image, with an optional directory of its modules.
    Image {
        label: String,
        image: PathBuf,
        modules: Option<PathBuf>,
    },
    /// The running kernel, probed directly.
    Host,
}

impl KernelSpec {
    /// The default matrix.
    pub fn defaults() -> Vec<KernelSpec> {
        vec![
            KernelSpec::parse("debian-6.1").expect("known"),
            KernelSpec::parse("debian-6.12").expect("known"),
        ]
    }

    /// Parses `debian-6.1`, `debian-6.12`, `host` or `PATH[:MODULES]`.
    pub fn parse(text: &str) -> Result<KernelSpec, String> {
        match text {
            "debian-6.1" => Ok(KernelSpec::Debian {
                label: text.into(),
                prefix: "linux-image-6.1.",
                suffix: "-cloud-amd64-unsigned",
            }),
            "debian-6.12" => Ok(KernelSpec::Debian {
                label: text.into(),
                prefix: "linux-image-6.12.",
                suffix: "+deb12-amd64-unsigned",
            }),
            "host" => Ok(KernelSpec::Host),
            path => {
                let (image, modules) = match path.split_once(':') {
                    Some((i, m)) => (PathBuf::from(i), Some(PathBuf::from(m))),
                    None => (PathBuf::from(path), None),
                };
                if !image.is_file() {
                    return Err(format!(
                        "unknown kernel {text:?}: expected debian-6.1, debian-6.12, host, or the path of a bzImage (optionally PATH:MODULES_DIR)"
                    ));
                }
                if let Some(m) = modules.as_ref().filter(|m| !m.is_dir()) {
                    return Err(format!(
                        "kernel modules directory {} does not exist",
                        m.display()
                    ));
                }
                let label = image
                    .file_name()
                    .map_or("image".into(), |n| n.to_string_lossy().into_owned());
                Ok(KernelSpec::Image {
                    label,
                    image,
                    modules,
                })
            }
        }
    }

    pub fn label(&self) -> String {
        match self {
            KernelSpec::Debian { label, .. } | KernelSpec::Image { label, .. } => label.clone(),
            KernelSpec::Host => "host".into(),
        }
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub label: String,
    /// Package name, or the image path.
    pub source: String,
    pub image: PathBuf,
    /// `lib/modules/<release>`, when there are modules.
    pub modules: Option<PathBuf>,
    /// The kernel's `config-<release>`, when known.
    pub config: Option<PathBuf>,
}

/// Resolves, downloads (or reuses) and unpacks a kernel.
pub fn prepare(spec: &KernelSpec) -> Result<Kernel, String> {
    match spec {
        KernelSpec::Debian {
            label,
            prefix,
            suffix,
        } => {
            let package = newest_package(prefix, suffix)?;
            let deb = download(&package)?;
            let root = unpack(&deb, &package)?;
            let image = find_one(&root.join("boot"), "vmlinuz-")?;
            let release = image
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("vmlinuz-")
                .to_owned();
            let modules = ["lib/modules", "usr/lib/modules"]
                .iter()
                .map(|d| root.join(d).join(&release))
                .find(|d| d.is_dir());
            let config =
                Some(root.join("boot").join(format!("config-{release}"))).filter(|c| c.is_file());
            Ok(Kernel {
                label: label.clone(),
                source: package,
                image,
                modules,
                config,
            })
        }
        KernelSpec::Image {
            label,
            image,
            modules,
        } => Ok(Kernel {
            label: label.clone(),
            source: image.display().to_string(),
            image: image.clone(),
            modules: modules.clone(),
            config: image.parent().and_then(|dir| find_one(dir, "config").ok()),
        }),
        KernelSpec::Host => Err("the host kernel is probed directly, not booted".into()),
    }
}

fn cache() -> PathBuf {
    crate::target_dir().join("vm").join("kernels")
}

/// The newest package named `prefix…suffix`, by the numbers in its version.
fn newest_package(prefix: &str, suffix: &str) -> Result<String, String> {
    let pattern = format!(
        "^{}.*{}$",
        prefix.replace('.', "\\."),
        suffix.replace('.', "\\.").replace('+', "\\+")
    );
    let search = || -> Result<Vec<String>, String> {
        let out = Command::new("apt-cache")
            .args(["search", "--names-only", &pattern])
            .output()
            .map_err(|e| format!("run apt-cache: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(" - ").next())
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
            .map(str::to_owned)
            .collect())
    };
    let mut names = search()?;
    if names.is_empty() && crate::prereq::is_root() {
        eprintln!("xtask: no {prefix}*{suffix} in the package lists; running apt-get update");
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        names = search()?;
    }
    let version = |name: &str| -> Vec<u64> {
        name[prefix.len() - 2..name.len() - suffix.len()]
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    names.into_iter().max_by_key(|n| version(n)).ok_or_else(|| {
        format!("no Debian package matches {prefix}*{suffix}: run `apt-get update` (as root) so that apt knows the kernel packages")
    })
}

/// Downloads the package into the cache unless a copy with the archive's
/// checksum is already there, and verifies it either way.
fn download(package: &str) -> Result<PathBuf, String> {
    let dir = cache().join("debs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let expected = archive_sha256(package)?;
    let existing = |dir: &Path| {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with(&format!("{package}_"))
                        && n.to_string_lossy().ends_with(".deb")
                })
            })
    };
    if let Some(deb) = existing(&dir) {
        if sha256_of(&deb)? == expected {
            return Ok(deb);
        }
        eprintln!(
            "xtask: {} does not match the archive's checksum; downloading it again",
            deb.display()
        );
        let _ = std::fs::remove_file(&deb);
    }
    eprintln!("xtask: downloading {package}");
    let status = Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("run apt-get download: {e}"))?;
    let deb = existing(&dir)
        .filter(|_| status.success())
        .ok_or_else(|| format!("`apt-get download {package}` failed ({status})"))?;
    let actual = sha256_of(&deb)?;
    if actual != expected {
        let _ = std::fs::remove_file(&deb);
        return Err(format!(
            "{package}: SHA256 {actual} does not match the archive's {expected}"
        ));
    }
    Ok(deb)
}

/// The SHA256 the package archive lists for the candidate version.
fn archive_sha256(package: &str) -> Result<String, String> {
    let out = Command::new("apt-cache")
        .args(["show", "--no-all-versions", package])
        .output()
        .map_err(|e| format!("run apt-cache show: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("SHA256: ").map(|s| s.trim().to_owned()))
        .ok_or_else(|| format!("apt-cache show {package} lists no SHA256"))
}

fn sha256_of(path: &Path) -> Result<String, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Unpacks the package once (`dpkg-deb -x`); a marker file records completion.
fn unpack(deb: &Path, package: &str) -> Result<PathBuf, String> {
    let root = cache().join(package);
    let done = root.join(".unpacked");
    if done.exists() {
        return Ok(root);
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&root)
        .status()
        .map_err(|e| format!("run dpkg-deb: {e}"))?;
    if !status.success() {
        return Err(format!("`dpkg-deb -x {}` failed ({status})", deb.display()));
    }
    std::fs::write(&done, "").map_err(|e| format!("write {}: {e}", done.display()))?;
    Ok(root)
}

fn find_one(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .ok_or_else(|| format!("no {prefix}* in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_clearly() {
        assert_eq!(KernelSpec::parse("host").unwrap(), KernelSpec::Host);
        assert_eq!(
            KernelSpec::parse("debian-6.12").unwrap().label(),
            "debian-6.12"
        );
        let err = KernelSpec::parse("debian-9").unwrap_err();
        assert!(
            err.contains("\"debian-9\"") && err.contains("debian-6.1, debian-6.12, host"),
            "{err}"
        );
    }
}
