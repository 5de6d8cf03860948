//! The loaded, checked content: programs by slug, exercises by id, resources by
//! country, and an ETag per program for HTTP caching.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::program::{Exercise, Program, Step};
use super::resources::{CountryResources, Resources, normalise_country};
use super::validate::{validate, validate_resources};
use super::{ContentError, ContentProblem};

/// A content file: its name (for error messages) and its text.
#[derive(Debug, Clone, Copy)]
pub struct ContentSource<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// The programs shipped in the binary. Add a new program's file here.
const PROGRAMS: &[ContentSource<'static>] =
    &[ContentSource { name: "shared/content/closer.toml", text: include_str!("../../content/closer.toml") }];

const RESOURCES: ContentSource<'static> =
    ContentSource { name: "shared/content/resources.toml", text: include_str!("../../content/resources.toml") };

static CATALOG: OnceLock<Result<Catalog, ContentError>> = OnceLock::new();

/// The compiled-in content, parsed and checked on first use and then shared.
/// Call it at startup: an error means the binary was built with broken content.
pub fn catalog() -> Result<&'static Catalog, ContentError> {
    CATALOG.get_or_init(Catalog::load).as_ref().map_err(Clone::clone)
}

#[derive(Debug)]
pub struct Catalog {
    programs: Vec<Program>,
    /// Parallel to `programs`.
    etags: Vec<String>,
    /// Exercise id → (program, step, exercise) indices.
    exercises: HashMap<String, (usize, usize, usize)>,
    resources: Resources,
    general_resources: CountryResources,
    country_resources: HashMap<String, CountryResources>,
}

impl Catalog {
    /// Parses and checks the compiled-in content. Prefer [`catalog`], which does
    /// this once.
    pub fn load() -> Result<Self, ContentError> {
        Self::from_sources(PROGRAMS, RESOURCES)
    }

    /// Parses and checks the given files, reporting the problems of all of them.
    pub fn from_sources(programs: &[ContentSource<'_>], resources: ContentSource<'_>) -> Result<Self, ContentError> {
        let mut problems = Vec::new();

        let mut parsed = Vec::new();
        for source in programs {
            match parse::<Program>(source) {
                Ok(program) => {
                    if let Err(error) = validate(&program) {
                        problems.extend(in_file(source, error));
                    }
                    parsed.push(program);
                }
                Err(problem) => problems.push(problem),
            }
        }
        let resources = match parse::<Resources>(&resources) {
            Ok(parsed) => {
                if let Err(error) = validate_resources(&parsed) {
                    problems.extend(in_file(&resources, error));
                }
                Some(parsed)
            }
            Err(problem) => {
                problems.push(problem);
                None
            }
        };

        // Check-ins name an exercise by id alone, so ids are unique across programs.
        let mut exercises = HashMap::new();
        let mut slugs = HashMap::new();
        for (p, program) in parsed.iter().enumerate() {
            if slugs.insert(program.slug.as_str(), p).is_some() {
                problems.push(ContentProblem::new(
                    format!("program {:?}", program.slug),
                    "another program has the same slug",
                ));
            }
            for (s, step) in program.steps.iter().enumerate() {
                for (e, exercise) in step.exercises.iter().enumerate() {
                    let previous = exercises.insert(exercise.id.clone(), (p, s, e));
                    if previous.is_some_and(|(other, _, _)| other != p) {
                        problems.push(ContentProblem::new(
                            format!("program {:?}, exercise {}", program.slug, exercise.id),
                            "exercise id is also used by another program",
                        ));
                    }
                }
            }
        }

        let mut etags = Vec::with_capacity(parsed.len());
        for program in &parsed {
            match etag_of(program) {
                Ok(etag) => etags.push(etag),
                Err(problem) => problems.push(problem),
            }
        }

        // A missing `resources` always comes with its parse problem.
        match resources {
            Some(resources) if problems.is_empty() => Ok(Self {
                programs: parsed,
                etags,
                exercises,
                general_resources: resources.general_answer(),
                country_resources: resources.country_answers().collect(),
                resources,
            }),
            _ => Err(ContentError { problems }),
        }
    }

    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    pub fn program(&self, slug: &str) -> Option<&Program> {
        self.programs.iter().find(|program| program.slug == slug)
    }

    /// The program's HTTP entity tag, quoted (`"<hex sha-256>"`): a digest of its
    /// JSON, so it changes exactly when what the API serves changes.
    pub fn etag(&self, slug: &str) -> Option<&str> {
        let index = self.programs.iter().position(|p| p.slug == slug)?;
        self.etags.get(index).map(String::as_str)
    }

    /// An exercise and the step it belongs to.
    pub fn exercise(&self, id: &str) -> Option<(&Step, &Exercise)> {
        let &(p, s, e) = self.exercises.get(id)?;
        let step = self.programs.get(p)?.steps.get(s)?;
        Some((step, step.exercises.get(e)?))
    }

    /// The resources to show someone in `country` (ISO 3166-1 alpha-2, any case):
    /// that country's services, emergency number first, then the general ones; for
    /// no country or one without a list, the general ones and a notice to call the
    /// local emergency number in immediate danger.
    pub fn resources_for(&self, country: Option<&str>) -> &CountryResources {
        country
            .and_then(normalise_country)
            .and_then(|code| self.country_resources.get(&code))
            .unwrap_or(&self.general_resources)
    }

    /// The resources file as loaded.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
}

fn parse<T: DeserializeOwned>(source: &ContentSource<'_>) -> Result<T, ContentProblem> {
    toml::from_str(source.text).map_err(|error| {
        // toml's message names the line and shows the offending text.
        ContentProblem::new(source.name, error.to_string().trim_end().to_owned())
    })
}

fn in_file(source: &ContentSource<'_>, error: ContentError) -> Vec<ContentProblem> {
    error
        .problems
        .into_iter()
        .map(|problem| ContentProblem::new(format!("{}: {}", source.name, problem.at), problem.message))
        .collect()
}

fn etag_of(program: &Program) -> Result<String, ContentProblem> {
    let json = serde_json::to_vec(program).map_err(|error| {
        ContentProblem::new(format!("program {:?}", program.slug), format!("cannot be serialised: {error}"))
    })?;
    Ok(format!("\"{}\"", hex::encode(Sha256::digest(&json))))
}
