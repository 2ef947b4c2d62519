//! One-line explanations of configuration errors: the key involved, what is wrong, the fix.
//!
//! The TOML deserializer reports an unknown key as "unknown field `x`, expected one of ..."
//! with the section on a second line; this module turns that into one line naming the full
//! key (`consumers.s3.consumer.batchsize`), the closest valid key when one is close, and where
//! every key is listed.

/// One line for a deserialization error of the merged configuration.
pub(super) fn explain(err: &toml::de::Error, origin: &str) -> String {
    let text = err.to_string();
    let (message, section) = match text.split_once("\nin `") {
        Some((m, rest)) => (m.trim(), rest.trim().trim_end_matches('`').to_string()),
        None => (text.trim(), String::new()),
    };
    let message = message.replace('\n', " ");
    let at = |key: &str| {
        if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        }
    };
    for (kind, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        let Some(rest) = message.strip_prefix(kind) else {
            continue;
        };
        let Some((given, tail)) = rest.split_once('`') else {
            break;
        };
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let hint = match closest(given, &expected) {
            Some(near) => format!("did you mean `{near}`? "),
            None => String::new(),
        };
        let place = if what == "key" {
            format!("unknown key `{}`", at(given))
        } else if section.is_empty() {
            format!("unknown value `{given}`")
        } else {
            format!("unknown value `{given}` for `{section}`")
        };
        return format!(
            "invalid configuration (from {origin}): {place}; {hint}accepted: {} \
             (infra/cli/src/default.toml documents every key; `shardline config show` prints \
             them)",
            expected.join(", ")
        );
    }
    let place = if section.is_empty() {
        String::new()
    } else {
        format!(" at `{section}`")
    };
    format!("invalid configuration (from {origin}){place}: {message}")
}

/// One line for a TOML syntax error in `text` (the file at `path`): the message, where, and
/// the line itself.
pub(super) fn syntax(err: &toml::de::Error, text: &str, path: &std::path::Path) -> String {
    let message = err.message().trim().replace('\n', "; ");
    let Some(span) = err.span() else {
        return format!(
            "config file {} is not valid TOML: {message}",
            path.display()
        );
    };
    let before = &text.as_bytes()[..span.start.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    let content = text.lines().nth(line - 1).unwrap_or_default().trim();
    format!(
        "config file {} is not valid TOML: {message} at line {line}, column {column} (`{content}`)",
        path.display()
    )
}

/// The accepted name nearest to `given`: equal but for case, `_` and `-`, or at most two
/// edits away.
fn closest<'a>(given: &str, accepted: &[&'a str]) -> Option<&'a str> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let g = squash(given);
    accepted
        .iter()
        .map(|a| (if squash(a) == g { 0 } else { edits(given, a) }, *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested() {
        let keys = ["name", "stream", "batch_size", "poll_interval"];
        assert_eq!(closest("batchsize", &keys), Some("batch_size"));
        assert_eq!(closest("Batch-Size", &keys), Some("batch_size"));
        assert_eq!(closest("strem", &keys), Some("stream"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
