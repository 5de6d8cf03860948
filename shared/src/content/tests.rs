//! The shipped content passes every check; broken copies of it are refused with a
//! message that names the problem; resources answer by country.

use super::*;

const CLOSER: &str = include_str!("../../content/closer.toml");
const RESOURCES: &str = include_str!("../../content/resources.toml");

fn load(program: &str, resources: &str) -> Result<Catalog, ContentError> {
    Catalog::from_sources(
        &[ContentSource { name: "closer.toml", text: program }],
        ContentSource { name: "resources.toml", text: resources },
    )
}

/// The error message for a broken copy of the program.
fn refused_program(program: &str) -> String {
    load(program, RESOURCES).unwrap_err().to_string()
}

fn refused_resources(resources: &str) -> String {
    load(CLOSER, resources).unwrap_err().to_string()
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    text.replacen(from, to, 1)
}

/// The file split into its header and one block per `[[steps]]`.
fn split_steps(text: &str) -> (String, Vec<String>) {
    let mut parts = text.split("\n[[steps]]\n").map(str::to_owned);
    let header = parts.next().unwrap();
    (header, parts.collect())
}

fn join_steps(header: &str, steps: &[String]) -> String {
    let mut text = header.to_owned();
    for step in steps {
        text.push_str("\n[[steps]]\n");
        text.push_str(step);
    }
    text
}

fn closer() -> &'static Program {
    catalog().unwrap().program("closer").unwrap()
}

fn all_text(exercise: &Exercise) -> String {
    format!("{} {} {}", exercise.title, exercise.instructions, exercise.safety_note.as_deref().unwrap_or_default())
        .to_lowercase()
}

// --- the shipped program ------------------------------------------------------------

#[test]
fn shipped_content_loads_and_passes_every_check() {
    let catalog = catalog().unwrap();
    assert_eq!(catalog.programs().len(), 1);
    let program = closer();
    validate(program).unwrap();
    validate_resources(catalog.resources()).unwrap();
    assert_eq!(program.version, "2026.11.1");
    assert_eq!(program.steps.len(), 10);
    for (index, step) in program.steps.iter().enumerate() {
        assert_eq!(usize::from(step.number), index + 1);
        assert!((4..=8).contains(&step.exercises.len()), "step {}", step.number);
    }
    assert_eq!(program.step(6).unwrap().slug, "past-hurts");
    assert!(program.step(11).is_none());
}

#[test]
fn every_exercise_is_found_by_id_with_its_step() {
    let catalog = catalog().unwrap();
    for step in &closer().steps {
        for exercise in &step.exercises {
            let (found_step, found) = catalog.exercise(&exercise.id).unwrap();
            assert_eq!(found_step.number, step.number);
            assert_eq!(found, exercise);
        }
    }
    assert_eq!(catalog.exercise("s1-barrier-map").unwrap().0.number, 1);
    assert!(catalog.exercise("no-such-exercise").is_none());
    assert!(catalog.program("elsewhere").is_none());
}

#[test]
fn every_step_can_be_started_gently_and_alone() {
    for step in &closer().steps {
        assert!(
            step.exercises.iter().any(|e| e.is_solo() && e.intensity == Intensity::LOWEST),
            "step {} needs a gentle solo exercise",
            step.number
        );
    }
    // Distress turns today's suggestion to grounding: there are several, and steps
    // 1–9 each have their own.
    let grounding: Vec<_> = closer().grounding_exercises().collect();
    assert!(grounding.len() >= 3);
    for number in 1..=9 {
        assert!(grounding.iter().any(|(step, _)| step.number == number), "step {number} has no grounding exercise");
    }
    for id in ["s9-slow-breathing", "s6-grounding-54321", "s9-body-scan"] {
        assert!(grounding.iter().any(|(_, e)| e.id == id), "{id}");
    }
}

#[test]
fn step_6_never_asks_to_revisit_trauma_and_points_to_therapy() {
    let step = closer().step(6).unwrap();
    for exercise in &step.exercises {
        assert!(exercise.safety_note.is_some(), "{} needs a safety note", exercise.id);
        let text = all_text(exercise);
        for phrase in [
            "describe what happened",
            "write about what happened",
            "write down what happened",
            "tell the story",
            "in detail",
            "recount",
            "relive",
            "retell",
            "remember the",
        ] {
            assert!(!text.contains(phrase), "{}: {phrase:?}", exercise.id);
        }
    }
    let text: String = step.exercises.iter().map(all_text).collect();
    for expected in ["therap", "emdr", "support groups", "grounding", "stop"] {
        assert!(text.contains(expected), "step 6 should mention {expected:?}");
    }
    assert!(step.exercises.iter().any(|e| e.kind == ExerciseKind::Resource));
}

#[test]
fn step_8_starts_gently_with_stopping_always_fine() {
    let step = closer().step(8).unwrap();
    let first = &step.exercises[0];
    assert_eq!(first.intensity, Intensity::LOWEST);
    assert_eq!(first.kind, ExerciseKind::Touch);
    assert!(first.instructions.contains("stopping is always fine"));
    for exercise in step.exercises.iter().filter(|e| e.kind == ExerciseKind::Touch) {
        let note = exercise.safety_note.as_deref().unwrap_or_default();
        assert!(!note.is_empty(), "{} needs a safety note", exercise.id);
        if exercise.mode == ExerciseMode::Partner {
            let text = all_text(exercise);
            assert!(text.contains("pause") || text.contains("stop"));
        }
    }
}

#[test]
fn step_10_explains_how_to_find_therapy() {
    let step = closer().step(10).unwrap();
    assert!(step.exercises.iter().filter(|e| e.kind == ExerciseKind::Resource).count() >= 3);
    let text: String = step.exercises.iter().map(all_text).collect();
    for expected in ["couples", "individual therapy", "directory", "questions", "first session", "sliding"] {
        assert!(text.contains(expected), "step 10 should mention {expected:?}");
    }
}

#[test]
fn no_exercise_text_is_explicit() {
    const EXPLICIT: &[&str] =
        &["naked", "nude", "genital", "orgasm", "intercourse", "arous", "erotic", "porn", "undress"];
    let program = closer();
    let mut texts = vec![program.title.to_lowercase(), program.description.to_lowercase()];
    for step in &program.steps {
        texts.push(format!("{} {}", step.title, step.purpose).to_lowercase());
        texts.extend(step.exercises.iter().map(all_text));
    }
    for text in texts {
        for word in EXPLICIT {
            assert!(!text.contains(word), "{word:?} in {text:?}");
        }
    }
}

#[test]
fn every_exercise_leaves_room_to_stop() {
    const PERMISSION: &[&str] = &[
        "stop",
        "pause",
        "skip",
        "pass",
        "let go",
        "not ready",
        "another day",
        "own pace",
        "a break",
        "end early",
        "turn back",
    ];
    for step in &closer().steps {
        for exercise in &step.exercises {
            let text = all_text(exercise);
            assert!(PERMISSION.iter().any(|word| text.contains(word)), "{} should say it's fine to stop", exercise.id);
        }
    }
}

#[test]
fn exercises_serialise_as_the_api_returns_them() {
    let (_, exercise) = catalog().unwrap().exercise("s9-slow-breathing").unwrap();
    let json = serde_json::to_value(exercise).unwrap();
    assert_eq!(json["kind"], "mindfulness");
    assert_eq!(json["mode"], "solo");
    assert_eq!(json["intensity"], 1);
    assert!(json.get("safety_note").is_none());

    let program = closer();
    let round_trip: Program = serde_json::from_str(&serde_json::to_string(program).unwrap()).unwrap();
    assert_eq!(&round_trip, program);

    let mut broken = serde_json::to_value(exercise).unwrap();
    broken["intensity"] = 0.into();
    assert!(serde_json::from_value::<Exercise>(broken).is_err());
}

#[test]
fn the_openapi_schema_states_the_ranges() {
    use utoipa::PartialSchema;
    let intensity = serde_json::to_value(Intensity::schema()).unwrap();
    assert_eq!(intensity["type"], "integer");
    assert_eq!(intensity["minimum"], 1);
    assert_eq!(intensity["maximum"], 5);
    let exercise = serde_json::to_value(Exercise::schema()).unwrap();
    assert_eq!(exercise["properties"]["minutes"]["maximum"], 120);
}

#[test]
fn intensity_holds_only_1_to_5() {
    assert!(Intensity::new(0).is_err());
    assert!(Intensity::new(6).is_err());
    assert_eq!(Intensity::new(3).unwrap().get(), 3);
    assert_eq!(Intensity::new(3).unwrap().next_up().get(), 4);
    assert_eq!(Intensity::HIGHEST.next_up(), Intensity::HIGHEST);
}

// --- broken copies are refused --------------------------------------------------------

#[test]
fn a_duplicate_exercise_id_is_refused_naming_it() {
    let broken = replace_once(CLOSER, "id = \"s2-friend-letter\"", "id = \"s1-barrier-map\"");
    let error = refused_program(&broken);
    assert!(error.contains("exercise s1-barrier-map: duplicate exercise id"), "{error}");
    assert!(error.contains("step 2"), "{error}");
}

#[test]
fn a_missing_step_is_refused() {
    let (header, mut steps) = split_steps(CLOSER);
    assert_eq!(steps.len(), 10);
    steps.remove(6);
    let error = refused_program(&join_steps(&header, &steps));
    assert!(error.contains("expected 10 steps, found 9"), "{error}");
    assert!(error.contains("step 8 (touch-at-your-pace): is in position 7"), "{error}");
}

#[test]
fn intensity_6_is_refused_naming_the_problem() {
    let broken = replace_once(CLOSER, "intensity = 1", "intensity = 6");
    let error = refused_program(&broken);
    assert!(error.contains("intensity must be between 1 and 5, got 6"), "{error}");
    assert!(error.contains("closer.toml"), "{error}");
    assert!(error.contains("line"), "{error}");
}

#[test]
fn a_step_without_an_intensity_1_exercise_is_refused() {
    let (header, mut steps) = split_steps(CLOSER);
    steps[9] = steps[9].replace("intensity = 1", "intensity = 2");
    let error = refused_program(&join_steps(&header, &steps));
    assert!(error.contains("step 10 (professional-help): needs at least one intensity-1 exercise"), "{error}");
}

#[test]
fn a_step_without_a_solo_exercise_is_refused() {
    let (header, mut steps) = split_steps(CLOSER);
    steps[0] = steps[0].replace("mode = \"solo\"", "mode = \"partner\"");
    let error = refused_program(&join_steps(&header, &steps));
    assert!(error.contains("step 1 (acknowledge-barriers): needs at least one solo exercise"));
}

#[test]
fn malformed_toml_is_refused_without_panicking() {
    let error = refused_program(&CLOSER.replacen("[[steps]]", "[[steps]", 1));
    assert!(error.starts_with("invalid content (1 problem):"), "{error}");
    assert!(error.contains("closer.toml"), "{error}");

    let error = refused_program("slug = \"closer\"\n");
    assert!(error.contains("missing field"), "{error}");

    let error = refused_program(&replace_once(CLOSER, "safety_note = ", "safety_notes = "));
    assert!(error.contains("unknown field `safety_notes`"), "{error}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut broken = replace_once(CLOSER, "id = \"s3-small-promise\"", "id = \"S3 Small\"");
    broken = replace_once(&broken, "minutes = 20", "minutes = 0");
    broken = replace_once(&broken, "title = \"Body scan\"", "title = \"\"");
    broken = replace_once(&broken, "version = \"2026.11.1\"", "version = \"latest\"");
    let (header, mut steps) = split_steps(&broken);
    // Keep only the first three exercises of step 4.
    let blocks: Vec<&str> = steps[3].split("\n[[steps.exercises]]\n").collect();
    steps[3] = blocks[..4].join("\n[[steps.exercises]]\n");
    let error = refused_program(&join_steps(&header, &steps));
    for expected in [
        "exercise S3 Small: id must be",
        "exercise s1-where-it-comes-from: minutes must be between 1 and 120, got 0",
        "exercise s9-body-scan: title must not be empty",
        "version \"latest\" must look like YYYY.MM.N",
        "step 4 (honest-communication): has 3 exercises, needs 4 to 8",
    ] {
        assert!(error.contains(expected), "{expected:?} missing from {error}");
    }
    assert!(error.starts_with("invalid content (5 problems):"), "{error}");
}

// --- resources --------------------------------------------------------------------------

#[test]
fn resources_for_a_listed_country_in_any_case() {
    let catalog = catalog().unwrap();
    let upper = catalog.resources_for(Some("GB"));
    assert_eq!(catalog.resources_for(Some("gb")), upper);
    assert_eq!(catalog.resources_for(Some(" gb ")), upper);
    assert_eq!(upper.country.as_deref(), Some("GB"));
    assert_eq!(upper.notice, None);
    assert_eq!(upper.entries[0].kind, ResourceKind::Emergency);
    assert_eq!(upper.entries[0].phone.as_deref(), Some("999"));
    assert!(upper.entries.iter().any(|e| e.name == "Samaritans"));
    // The general entries follow the country's own.
    let general = &catalog.resources().general.entries;
    assert_eq!(&upper.entries[upper.entries.len() - general.len()..], general);
}

#[test]
fn resources_for_no_or_an_unlisted_country_are_the_general_ones_with_a_notice() {
    let catalog = catalog().unwrap();
    for country in [None, Some("ZZ"), Some("zz"), Some(""), Some("GBR"), Some("1!")] {
        let answer = catalog.resources_for(country);
        assert_eq!(answer.country, None, "{country:?}");
        let notice = answer.notice.as_deref().unwrap();
        assert!(notice.contains("local emergency number"), "{notice}");
        assert_eq!(answer.entries, catalog.resources().general.entries);
        assert!(answer.entries.iter().any(|e| e.name == "Find A Helpline"));
    }
}

#[test]
fn every_country_lists_its_emergency_number_first() {
    let catalog = catalog().unwrap();
    let expected =
        [("US", "911"), ("CA", "911"), ("GB", "999"), ("DE", "112"), ("AU", "000"), ("FR", "112"), ("IN", "112")];
    assert_eq!(catalog.resources().countries.len(), expected.len());
    for (code, number) in expected {
        let answer = catalog.resources_for(Some(code));
        let first = &answer.entries[0];
        assert_eq!(first.kind, ResourceKind::Emergency, "{code}");
        assert_eq!(first.phone.as_deref(), Some(number), "{code}");
        let emergencies = answer.entries.iter().filter(|e| e.kind == ResourceKind::Emergency).count();
        assert_eq!(emergencies, 1, "{code}");
        for entry in &answer.entries {
            assert_eq!(entry.last_verified.to_string(), "2026-11-23");
        }
    }
}

#[test]
fn broken_resources_are_refused_naming_the_entry() {
    let broken = replace_once(RESOURCES, "https://cosrt.org.uk", "http://cosrt.org.uk");
    let error = refused_resources(&broken);
    assert!(error.contains("resources GB, \"COSRT\": url"), "{error}");

    let broken = replace_once(RESOURCES, "phone = \"13 11 14\"\n", "");
    let error = refused_resources(&broken);
    assert!(error.contains("\"Lifeline\": needs a phone or a url"), "{error}");

    let broken = RESOURCES.replace("[[countries.IN]]", "[[countries.in]]");
    let error = refused_resources(&broken);
    assert!(error.contains("resources in: country must be"), "{error}");

    let broken = replace_once(RESOURCES, "phone = \"000\"", "phone = \"call 000\"");
    let error = refused_resources(&broken);
    assert!(error.contains("phone \"call 000\""), "{error}");

    // Moving the emergency entry after another one.
    let (before, fr) = RESOURCES.split_once("[[countries.FR]]").unwrap();
    let (fr_emergency, rest) = fr.split_once("[[countries.FR]]").unwrap();
    let broken = format!("{before}[[countries.FR]]{rest}[[countries.FR]]{fr_emergency}");
    let error = refused_resources(&broken);
    assert!(error.contains("resources FR: the first entry must be the local emergency number"));
}

// --- caching ----------------------------------------------------------------------------

#[test]
fn the_etag_is_stable_and_follows_the_content() {
    let shipped = catalog().unwrap().etag("closer").unwrap().to_owned();
    assert!(shipped.starts_with('"') && shipped.ends_with('"'));
    assert_eq!(shipped.len(), 64 + 2);

    let again = Catalog::load().unwrap();
    assert_eq!(again.etag("closer"), Some(shipped.as_str()));

    let changed = replace_once(CLOSER, "title = \"Body scan\"", "title = \"A body scan\"");
    let changed = load(&changed, RESOURCES).unwrap();
    assert_ne!(changed.etag("closer"), Some(shipped.as_str()));
    assert!(changed.etag("elsewhere").is_none());
}

#[test]
fn the_error_lists_each_problem_on_its_own_line() {
    let error = ContentError {
        problems: vec![ContentProblem::new("a.toml", "first"), ContentProblem::new("b.toml", "second")],
    };
    assert_eq!(error.to_string(), "invalid content (2 problems):\n  - a.toml: first\n  - b.toml: second");
}
