//! The `-transcodingOptions`-style argument: preset names or a JSON file.

use std::collections::HashSet;
use std::path::Path;

use crate::error::ProfileError;
use crate::json::parse_json_profiles;
use crate::presets::{preset, studio_preset};
use crate::profile::Profile;

/// Parses a profile list argument and validates it with [`validate_list`].
///
/// Accepted forms:
/// - a comma-separated list of names, each a go-livepeer preset
///   (`P240p30fps16x9`, case-sensitive) or a Studio rung (`240p0` ... `720p0`);
///   whitespace around names is ignored, an empty item is an unknown preset;
/// - `@path/to/file.json`, a file holding a JSON array of profiles (§5.3);
/// - a bare path ending in `.json`, as go-livepeer's flag takes it.
pub fn parse_profiles_arg(arg: &str) -> Result<Vec<Profile>, ProfileError> {
    let arg = arg.trim();
    let profiles = if let Some(path) = arg.strip_prefix('@') {
        read_json_file(Path::new(path))?
    } else if arg.to_ascii_lowercase().ends_with(".json") {
        read_json_file(Path::new(arg))?
    } else if arg.is_empty() {
        return Err(ProfileError::EmptyList);
    } else {
        arg.split(',')
            .map(|item| {
                let name = item.trim();
                preset(name)
                    .or_else(|| studio_preset(name))
                    .ok_or_else(|| ProfileError::UnknownPreset(name.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    validate_list(&profiles)?;
    Ok(profiles)
}

fn read_json_file(path: &Path) -> Result<Vec<Profile>, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    parse_json_profiles(&text)
}

/// Checks a ladder: not empty, names unique (they key rendition paths), and
/// every profile passes [`Profile::validate`] (errors carry the index).
pub fn validate_list(profiles: &[Profile]) -> Result<(), ProfileError> {
    if profiles.is_empty() {
        return Err(ProfileError::EmptyList);
    }
    let mut seen = HashSet::new();
    for (index, profile) in profiles.iter().enumerate() {
        profile.validate().map_err(|source| ProfileError::Entry {
            index,
            source: Box::new(source),
        })?;
        if !seen.insert(profile.name.as_str()) {
            return Err(ProfileError::DuplicateName(profile.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Gop, VideoCodec};
    use std::io::Write;

    fn names(profiles: &[Profile]) -> Vec<&str> {
        profiles.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn preset_lists() {
        let got = parse_profiles_arg("P240p30fps16x9,P360p30fps16x9").expect("default ladder");
        assert_eq!(names(&got), ["P240p30fps16x9", "P360p30fps16x9"]);
        assert_eq!(got[1].bitrate, 1_200_000);
        let got = parse_profiles_arg(" 720p0 , P144p30fps16x9,240p0 ").expect("mixed");
        assert_eq!(names(&got), ["720p0", "P144p30fps16x9", "240p0"]);
        assert_eq!(got[0].frame_rate(), None);
    }

    #[test]
    fn bad_lists_are_rejected() {
        assert!(matches!(
            parse_profiles_arg(""),
            Err(ProfileError::EmptyList)
        ));
        assert!(matches!(
            parse_profiles_arg("  "),
            Err(ProfileError::EmptyList)
        ));
        match parse_profiles_arg("P240p30fps16x9,P144p25fps16x9") {
            Err(ProfileError::UnknownPreset(name)) => assert_eq!(name, "P144p25fps16x9"),
            other => panic!("expected unknown preset, got {other:?}"),
        }
        assert!(matches!(
            parse_profiles_arg("P240p30fps16x9,"),
            Err(ProfileError::UnknownPreset(name)) if name.is_empty()
        ));
        match parse_profiles_arg("360p0,P240p30fps16x9,360p0") {
            Err(ProfileError::DuplicateName(name)) => assert_eq!(name, "360p0"),
            other => panic!("expected duplicate, got {other:?}"),
        }
    }

    #[test]
    fn json_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ladder.json");
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(
            br#"[{"name":"a","width":640,"height":360,"bitrate":900000,"gop":"2"},
                            {"width":1280,"height":720,"bitrate":3000000,"fps":30}]"#,
        )
        .expect("write");
        drop(file);
        let got = parse_profiles_arg(&format!("@{}", path.display())).expect("@file");
        assert_eq!(names(&got), ["a", "custom_1280x720_3000000"]);
        assert_eq!(got[0].gop, Gop::Millis(2000));
        let bare = parse_profiles_arg(&path.display().to_string()).expect("bare path");
        assert_eq!(bare, got);

        let missing = dir.path().join("missing.json");
        assert!(matches!(
            parse_profiles_arg(&format!("@{}", missing.display())),
            Err(ProfileError::ReadFile { .. })
        ));

        std::fs::write(&path, "[]").expect("write");
        assert!(matches!(
            parse_profiles_arg(&format!("@{}", path.display())),
            Err(ProfileError::EmptyList)
        ));

        std::fs::write(
            &path,
            r#"[{"name":"ok","width":640,"height":360},{"name":"h","width":640,"height":360,"encoder":"HEVC"}]"#,
        )
        .expect("write");
        match parse_profiles_arg(&format!("@{}", path.display())) {
            Err(ProfileError::Entry { index, source }) => {
                assert_eq!(index, 1);
                assert!(matches!(
                    *source,
                    ProfileError::UnsupportedEncoder {
                        codec: VideoCodec::H265,
                        ..
                    }
                ));
            }
            other => panic!("expected entry error, got {other:?}"),
        }
    }
}
