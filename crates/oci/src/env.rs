//! The process environment: the image's `Env`, overridden key by key by the CRI `envs`, with
//! `PATH`, `HOSTNAME` (and `TERM` for a tty) added when missing.
//!
//! CRI `KeyValue.value` is `bytes` in this proto version, but the OCI spec carries env as
//! JSON strings: a value that is not UTF-8 cannot be passed faithfully, so it is rejected
//! with an error naming the variable rather than altered silently. NUL bytes (which execve
//! cannot carry) and names that are empty or contain `=` are rejected the same way.

use cri_api::v1;

use crate::error::EnvProblem;
use crate::SpecError;

/// `PATH` when neither the image nor the CRI config sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The final `KEY=value` list, in the image's order, then new CRI keys in their order.
pub(crate) fn process_env(
    image_env: &[String],
    cri_env: &[v1::KeyValue],
    hostname: &str,
    tty: bool,
) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<(String, String)> = Vec::with_capacity(image_env.len() + cri_env.len() + 3);
    for entry in image_env {
        // An image entry without '=' is a name with an empty value, as Docker reads it.
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        if key.is_empty() {
            continue;
        }
        set(&mut env, key, value.to_owned());
    }
    for kv in cri_env {
        let value = checked(kv)?;
        set(&mut env, &kv.key, value);
    }
    let has = |env: &[(String, String)], key: &str| env.iter().any(|(k, _)| k == key);
    if !has(&env, "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if !has(&env, "HOSTNAME") && !hostname.is_empty() {
        env.push(("HOSTNAME".into(), hostname.into()));
    }
    if tty && !has(&env, "TERM") {
        env.push(("TERM".into(), "xterm".into()));
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_owned(), value)),
    }
}

fn checked(kv: &v1::KeyValue) -> Result<String, SpecError> {
    let fail = |problem| SpecError::Env {
        key: kv.key.clone(),
        problem,
    };
    if kv.key.is_empty() {
        return Err(fail(EnvProblem::EmptyName));
    }
    if kv.key.contains(['=', '\0']) {
        return Err(fail(EnvProblem::BadName));
    }
    let value = String::from_utf8(kv.value.clone()).map_err(|_| fail(EnvProblem::NotUtf8))?;
    if value.contains('\0') {
        return Err(fail(EnvProblem::Nul));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8]) -> v1::KeyValue {
        v1::KeyValue {
            key: key.into(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn cri_overrides_image_by_key_and_keeps_order() {
        let image = vec!["PATH=/bin".to_string(), "A=image".into(), "B=image".into()];
        let env = process_env(&image, &[kv("B", b"cri"), kv("C", b"new")], "pod", false).unwrap();
        assert_eq!(
            env,
            ["PATH=/bin", "A=image", "B=cri", "C=new", "HOSTNAME=pod"]
        );
    }

    #[test]
    fn path_hostname_and_term_are_defaulted() {
        let env = process_env(&[], &[], "web-0", true).unwrap();
        assert_eq!(
            env,
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=web-0".into(),
                "TERM=xterm".into()
            ]
        );
        let env = process_env(
            &[],
            &[kv("HOSTNAME", b"mine"), kv("PATH", b"/x")],
            "web-0",
            false,
        )
        .unwrap();
        assert_eq!(env, ["HOSTNAME=mine", "PATH=/x"]);
    }

    #[test]
    fn values_may_contain_equals_signs_and_be_empty() {
        let env =
            process_env(&["X=a=b".into(), "FLAG".into()], &[kv("E", b"")], "", false).unwrap();
        assert_eq!(env[..3], ["X=a=b", "FLAG=", "E="]);
    }

    #[test]
    fn bad_variables_are_rejected_by_name() {
        for (var, problem) in [
            (kv("BIN", &[0xff, 0xfe]), EnvProblem::NotUtf8),
            (kv("NUL", b"a\0b"), EnvProblem::Nul),
            (kv("A=B", b"x"), EnvProblem::BadName),
            (kv("", b"x"), EnvProblem::EmptyName),
        ] {
            match process_env(&[], std::slice::from_ref(&var), "", false) {
                Err(SpecError::Env { key, problem: got }) => {
                    assert_eq!(key, var.key);
                    assert_eq!(got, problem);
                }
                other => panic!("{var:?}: {other:?}"),
            }
        }
    }
}
