//! Who `--user` and `--group-add` name, resolved as docker resolves them
//! against the image's `/etc/passwd` and `/etc/group` (given here as text).
//!
//! `/etc/passwd` lines are `name:password:uid:gid:gecos:home:shell`, and
//! `/etc/group` lines are `name:password:gid:member,member,...`. A user is
//! named by name or number; a number the image does not list is still a
//! valid uid (with gid 0 and home `/`), a name it does not list is not.
//! Supplementary groups are those whose member list names the user, when
//! no group is named (`NAME`, not `NAME:GROUP`), as runc reads it.

use crate::error::{Error, Result};
use crate::User;

/// A resolved `--user`, and the home directory `HOME` defaults to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub user: User,
    pub home: String,
}

/// Resolves `user` (`NAME|UID[:GROUP|GID]`) and `group_add` (names or
/// gids) against the image's `passwd` and `group` files.
pub fn resolve(user: &str, group_add: &[String], passwd: &str, group: &str) -> Result<Resolved> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(Error::invalid(
            "--user",
            user,
            "expected NAME or UID, then optionally :GROUP or :GID",
        ));
    }
    let passwd_entries: Vec<Vec<&str>> = entries(passwd, 7);
    let by_name = passwd_entries.iter().find(|e| e[0] == user_part);
    let number = parse_id(user_part);
    let entry = by_name.or_else(|| {
        let uid = number?;
        passwd_entries.iter().find(|e| parse_id(e[2]) == Some(uid))
    });
    let (uid, mut gid, name, home) = match (entry, number) {
        (Some(e), _) => {
            let (Some(uid), Some(gid)) = (parse_id(e[2]), parse_id(e[3])) else {
                return Err(Error::invalid(
                    "--user",
                    user,
                    format!(
                        "the image's /etc/passwd entry for {} has no valid ids",
                        e[0]
                    ),
                ));
            };
            (uid, gid, Some(e[0]), non_empty(e[5]).unwrap_or("/"))
        }
        (None, Some(uid)) => (uid, 0, None, "/"),
        (None, None) => {
            return Err(Error::invalid(
                "--user",
                user,
                "no such user in the image's /etc/passwd (a number needs no entry)",
            ))
        }
    };
    let group_entries: Vec<Vec<&str>> = entries(group, 4);
    // `given` is the flag's whole value, which the error names.
    let group_id = |text: &str, flag: &'static str, given: &str| -> Result<u32> {
        group_entries
            .iter()
            .find(|e| e[0] == text)
            .and_then(|e| parse_id(e[2]))
            .or_else(|| parse_id(text))
            .ok_or_else(|| {
                Error::invalid(
                    flag,
                    given,
                    format!("no group {text} in the image's /etc/group (a number needs no entry)"),
                )
            })
    };
    if let Some(g) = group_part {
        gid = group_id(g, "--user", user)?;
    }
    // As runc: the image's memberships only in the implicit form (no
    // group named); `NAME:GROUP` gets that group and --group-add's alone.
    let mut additional_gids: Vec<u32> = match name.filter(|_| group_part.is_none()) {
        Some(name) => group_entries
            .iter()
            .filter(|e| e[3].split(',').any(|m| m == name))
            .filter_map(|e| parse_id(e[2]))
            .collect(),
        None => Vec::new(),
    };
    for extra in group_add {
        additional_gids.push(group_id(extra, "--group-add", extra)?);
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(Resolved {
        user: User {
            uid,
            gid,
            additional_gids,
            umask: None,
        },
        home: home.to_owned(),
    })
}

/// The lines of a colon-separated file with exactly `fields` fields;
/// comments and malformed lines are passed over, as libc does.
fn entries(text: &str, fields: usize) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() == fields)
        .collect()
}

/// An id as the kernel takes it: 0 to 2^31 - 1.
fn parse_id(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|&n| n <= i32::MAX as u32)
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/bin/false
web:x:1000:1000::/home/web:/bin/sh
broken:x:one:two::/:/bin/sh
broken line
";
    const GROUP: &str = "root:x:0:
web:x:1000:
audio:x:29:web,other
video:x:44:other
staff:x:50:web
";

    fn resolved(user: &str, extra: &[&str]) -> Result<Resolved> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        resolve(user, &extra, PASSWD, GROUP)
    }

    #[test]
    fn a_name_brings_its_ids_home_and_groups() {
        let web = resolved("web", &[]).unwrap();
        assert_eq!((web.user.uid, web.user.gid), (1000, 1000));
        assert_eq!(web.user.additional_gids, [29, 50]);
        assert_eq!(web.home, "/home/web");
    }

    #[test]
    fn a_number_is_found_or_taken_as_it_is() {
        let daemon = resolved("1", &[]).unwrap();
        assert_eq!((daemon.user.uid, daemon.user.gid), (1, 1));
        assert_eq!(daemon.home, "/usr/sbin");
        let unknown = resolved("4242:4343", &[]).unwrap();
        assert_eq!((unknown.user.uid, unknown.user.gid), (4242, 4343));
        assert_eq!(unknown.home, "/");
        assert!(unknown.user.additional_gids.is_empty());
        assert_eq!(resolved("4242", &[]).unwrap().user.gid, 0);
    }

    #[test]
    fn a_named_group_replaces_the_memberships() {
        let web = resolved("web:video", &[]).unwrap();
        assert_eq!(web.user.gid, 44);
        assert!(web.user.additional_gids.is_empty());
        let added = resolved("web:video", &["audio", "7"]).unwrap();
        assert_eq!(added.user.additional_gids, [7, 29]);
    }

    #[test]
    fn what_the_image_does_not_list_is_named() {
        for (user, extra, mention) in [
            ("nosuch", &[][..], "nosuch"),
            ("web:nogroup", &[], "web:nogroup"),
            ("web", &["nogroup"], "nogroup"),
            ("", &[], "NAME or UID"),
            ("web:", &[], "GROUP"),
            ("4294967295", &[], "4294967295"),
            ("broken", &[], "no valid ids"),
        ] {
            let error = resolved(user, extra).unwrap_err().to_string();
            assert!(error.contains(mention), "{user}: {error}");
        }
    }
}
