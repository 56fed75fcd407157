//! The process's argv and working directory, merged from the CRI config and the image as
//! kubelet expects (the Docker rules): a CRI `command` replaces the image's Entrypoint *and*
//! Cmd; without one, CRI `args` replace only the image's Cmd.

use cri_api::v1;

use crate::{ImageView, SpecError};

/// `command + args`, or `Entrypoint + (args or Cmd)`; never empty.
pub(crate) fn process_args(
    container: &v1::ContainerConfig,
    image: &ImageView,
) -> Result<Vec<String>, SpecError> {
    let args = if !container.command.is_empty() {
        container
            .command
            .iter()
            .chain(&container.args)
            .cloned()
            .collect()
    } else {
        let mut args = image.entrypoint()?;
        if container.args.is_empty() {
            args.extend(image.cmd()?);
        } else {
            args.extend(container.args.iter().cloned());
        }
        args
    };
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// CRI `working_dir`, else the image's `WorkingDir`, else `/`. Must be absolute.
pub(crate) fn working_dir(
    container: &v1::ContainerConfig,
    image: &ImageView,
) -> Result<String, SpecError> {
    let dir = match container.working_dir.as_str() {
        "" => image.working_dir()?.unwrap_or("/"),
        dir => dir,
    };
    if !dir.starts_with('/') {
        return Err(SpecError::WorkingDir(dir.to_owned()));
    }
    Ok(dir.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(command: &[&str], args: &[&str]) -> v1::ContainerConfig {
        v1::ContainerConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_kubelet_merge_matrix() {
        let both = json!({"config": {"Entrypoint": ["/ep"], "Cmd": ["cmd1", "cmd2"]}});
        let cmd_only = json!({"config": {"Cmd": ["sh"]}});
        let ep_only = json!({"config": {"Entrypoint": ["/ep", "x"]}});
        let none = json!({"config": {}});
        type Case<'a> = (
            &'a serde_json::Value,
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // image,     CRI command,   CRI args,      expected argv
            (&both,     &[],           &[],           &["/ep", "cmd1", "cmd2"]),
            (&both,     &[],           &["a"],        &["/ep", "a"]),
            (&both,     &["top"],      &[],           &["top"]),
            (&both,     &["top"],      &["-b"],       &["top", "-b"]),
            (&cmd_only, &[],           &[],           &["sh"]),
            (&cmd_only, &[],           &["ls", "/"],  &["ls", "/"]),
            (&ep_only,  &[],           &[],           &["/ep", "x"]),
            (&ep_only,  &[],           &["y"],        &["/ep", "x", "y"]),
            (&none,     &["echo"],     &["hi"],       &["echo", "hi"]),
            (&none,     &[],           &["echo"],     &["echo"]),
        ];
        for (image, command, args, expected) in cases {
            let image = ImageView {
                config: image,
                image_ref: "",
            };
            let got = process_args(&config(command, args), &image).unwrap();
            assert_eq!(&got, expected, "command {command:?} args {args:?}");
        }
    }

    #[test]
    fn no_command_anywhere_is_an_error() {
        let none = json!({"config": {"Cmd": []}});
        let image = ImageView {
            config: &none,
            image_ref: "",
        };
        assert!(matches!(
            process_args(&config(&[], &[]), &image),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn working_dir_precedence() {
        let with = json!({"config": {"WorkingDir": "/srv"}});
        let without = json!({"config": {}});
        let img = |c| ImageView {
            config: c,
            image_ref: "",
        };
        let mut cri = config(&[], &[]);
        assert_eq!(working_dir(&cri, &img(&with)).unwrap(), "/srv");
        assert_eq!(working_dir(&cri, &img(&without)).unwrap(), "/");
        cri.working_dir = "/work".into();
        assert_eq!(working_dir(&cri, &img(&with)).unwrap(), "/work");
        cri.working_dir = "relative".into();
        assert!(matches!(
            working_dir(&cri, &img(&with)),
            Err(SpecError::WorkingDir(_))
        ));
    }
}
