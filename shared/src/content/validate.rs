//! The checks content must pass when loaded. Each collects every problem rather
//! than stopping at the first, and names the step, exercise or entry at fault.

use std::collections::HashSet;

use super::program::{Exercise, Program, Step};
use super::resources::{Resource, ResourceKind, Resources};
use super::{ContentError, ContentProblem};

pub const STEP_COUNT: usize = 10;
pub const MIN_EXERCISES_PER_STEP: usize = 4;
pub const MAX_EXERCISES_PER_STEP: usize = 8;
pub const MAX_MINUTES: u16 = 120;
pub const MAX_ID_LEN: usize = 64;
/// Today's suggestion falls back to a grounding exercise under distress; a few of
/// them let it vary.
pub const MIN_GROUNDING_EXERCISES: usize = 3;

/// Checks a program's structure and text: ten steps numbered in order, unique slugs
/// and exercise ids, ranges, and that every step can be started gently and alone.
pub fn validate(program: &Program) -> Result<(), ContentError> {
    let mut problems = Vec::new();
    let at = format!("program {:?}", program.slug);
    let mut report = |at: &str, message: String| problems.push(ContentProblem::new(at, message));

    if !is_slug(&program.slug) {
        report(&at, "slug must be lowercase a-z, 0-9 and '-'".into());
    }
    if !is_version(&program.version) {
        report(&at, format!("version {:?} must look like YYYY.MM.N", program.version));
    }
    for (field, text) in [("title", &program.title), ("description", &program.description)] {
        if let Some(message) = text_problem(field, text) {
            report(&at, message);
        }
    }
    if program.modes.is_empty() {
        report(&at, "modes must list at least one mode".into());
    }
    if program.steps.len() != STEP_COUNT {
        report(&at, format!("expected {STEP_COUNT} steps, found {}", program.steps.len()));
    }

    let mut step_slugs = HashSet::new();
    let mut exercise_ids = HashSet::new();
    for (index, step) in program.steps.iter().enumerate() {
        let at = format!("{at}, step {} ({})", step.number, step.slug);
        let expected = index + 1;
        if usize::from(step.number) != expected {
            report(&at, format!("is in position {expected}, so its number must be {expected}"));
        }
        if !is_slug(&step.slug) {
            report(&at, "slug must be lowercase a-z, 0-9 and '-'".into());
        }
        if !step_slugs.insert(step.slug.as_str()) {
            report(&at, "slug is used by another step".into());
        }
        for message in step_problems(step) {
            report(&at, message);
        }
        for exercise in &step.exercises {
            let at = format!("{at}, exercise {}", exercise.id);
            if !exercise_ids.insert(exercise.id.as_str()) {
                report(&at, "duplicate exercise id".into());
            }
            for message in exercise_problems(exercise) {
                report(&at, message);
            }
        }
    }

    let grounding = program.grounding_exercises().count();
    if grounding < MIN_GROUNDING_EXERCISES {
        report(
            &at,
            format!(
                "needs at least {MIN_GROUNDING_EXERCISES} intensity-1 solo mindfulness exercises \
                 for moments of distress, found {grounding}"
            ),
        );
    }

    ContentError::from_problems(problems)
}

fn step_problems(step: &Step) -> Vec<String> {
    let mut problems = Vec::new();
    for (field, text) in [("title", &step.title), ("purpose", &step.purpose)] {
        problems.extend(text_problem(field, text));
    }
    let count = step.exercises.len();
    if !(MIN_EXERCISES_PER_STEP..=MAX_EXERCISES_PER_STEP).contains(&count) {
        problems.push(format!("has {count} exercises, needs {MIN_EXERCISES_PER_STEP} to {MAX_EXERCISES_PER_STEP}"));
    }
    // Every step must be startable gently, and without a partner.
    if !step.exercises.iter().any(|e| e.intensity.get() == 1) {
        problems.push("needs at least one intensity-1 exercise".into());
    }
    if !step.exercises.iter().any(Exercise::is_solo) {
        problems.push("needs at least one solo exercise".into());
    }
    problems
}

fn exercise_problems(exercise: &Exercise) -> Vec<String> {
    let mut problems = Vec::new();
    if exercise.id.is_empty() || exercise.id.len() > MAX_ID_LEN || !is_slug(&exercise.id) {
        problems.push(format!("id must be 1 to {MAX_ID_LEN} characters of lowercase a-z, 0-9 and '-'"));
    }
    for (field, text) in [("title", &exercise.title), ("instructions", &exercise.instructions)] {
        problems.extend(text_problem(field, text));
    }
    if let Some(note) = &exercise.safety_note {
        problems.extend(text_problem("safety_note", note));
    }
    if !(1..=MAX_MINUTES).contains(&exercise.minutes) {
        problems.push(format!("minutes must be between 1 and {MAX_MINUTES}, got {}", exercise.minutes));
    }
    problems
}

/// Checks the resources: country codes, the emergency number first, a way to reach
/// every service, and https links.
pub fn validate_resources(resources: &Resources) -> Result<(), ContentError> {
    let mut problems = Vec::new();

    if let Some(message) = text_problem("notice", &resources.general.notice) {
        problems.push(ContentProblem::new("resources general", message));
    }
    if resources.general.entries.is_empty() {
        problems.push(ContentProblem::new("resources general", "needs at least one entry"));
    }
    for entry in &resources.general.entries {
        let at = format!("resources general, {:?}", entry.name);
        if entry.kind == ResourceKind::Emergency {
            problems.push(ContentProblem::new(&at, "emergency numbers are local: list them under their country"));
        }
        problems.extend(entry_problems(entry).into_iter().map(|message| ContentProblem::new(&at, message)));
    }

    for (code, entries) in &resources.countries {
        let at = format!("resources {code}");
        let is_code = code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase());
        if !is_code {
            problems
                .push(ContentProblem::new(&at, "country must be an ISO 3166-1 alpha-2 code in upper case, like GB"));
        }
        if entries.first().map(|entry| entry.kind) != Some(ResourceKind::Emergency) {
            problems.push(ContentProblem::new(
                &at,
                "the first entry must be the local emergency number (kind = \"emergency\")",
            ));
        }
        let emergencies = entries.iter().filter(|entry| entry.kind == ResourceKind::Emergency).count();
        if emergencies > 1 {
            problems.push(ContentProblem::new(&at, format!("has {emergencies} emergency entries, expected one")));
        }
        let mut names = HashSet::new();
        for entry in entries {
            let at = format!("{at}, {:?}", entry.name);
            if !names.insert(entry.name.as_str()) {
                problems.push(ContentProblem::new(&at, "duplicate name"));
            }
            problems.extend(entry_problems(entry).into_iter().map(|message| ContentProblem::new(&at, message)));
        }
    }

    ContentError::from_problems(problems)
}

fn entry_problems(entry: &Resource) -> Vec<String> {
    let mut problems = Vec::new();
    for (field, text) in [("name", &entry.name), ("description", &entry.description)] {
        problems.extend(text_problem(field, text));
    }
    if entry.phone.is_none() && entry.url.is_none() {
        problems.push("needs a phone or a url".into());
    }
    for (field, phone) in [("phone", &entry.phone), ("alternate_phone", &entry.alternate_phone)] {
        if let Some(phone) = phone
            && !is_phone(phone)
        {
            problems.push(format!("{field} {phone:?} must be digits, spaces, '-' or a leading '+'"));
        }
    }
    if let Some(url) = &entry.url {
        let host = url.strip_prefix("https://").unwrap_or_default();
        if host.is_empty() || url.chars().any(char::is_whitespace) {
            problems.push(format!("url {url:?} must be a full https:// address"));
        }
    }
    for (field, text) in [("text", &entry.text), ("available", &entry.available)] {
        if let Some(text) = text {
            problems.extend(text_problem(field, text));
        }
    }
    problems
}

/// `None` when the text is fine to show.
fn text_problem(field: &str, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        Some(format!("{field} must not be empty"))
    } else if text.trim() != text || text.contains('\n') {
        Some(format!("{field} must be one line without leading or trailing spaces"))
    } else {
        None
    }
}

fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_version(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3 && parts.iter().all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

fn is_phone(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or(value);
    digits.chars().any(|c| c.is_ascii_digit()) && digits.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
}
