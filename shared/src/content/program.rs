//! A program's shape: ten steps of exercises, as written in `shared/content/*.toml`
//! and as the API returns it.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A guided program, such as `closer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
// Unknown fields are refused so a misspelt `safety_note` is an error, not lost text.
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Stable identifier used in URLs and enrollments.
    pub slug: String,
    /// Content version (`YYYY.MM.N`), bumped with every change to the text.
    pub version: String,
    pub title: String,
    pub description: String,
    /// The ways the program can be followed.
    pub modes: Vec<ProgramMode>,
    /// The steps, numbered 1 to 10, in order.
    pub steps: Vec<Step>,
}

impl Program {
    /// The step with this number (1-based).
    pub fn step(&self, number: u8) -> Option<&Step> {
        self.steps.iter().find(|step| step.number == number)
    }

    /// Low-intensity solo mindfulness exercises, for moments of distress.
    pub fn grounding_exercises(&self) -> impl Iterator<Item = (&Step, &Exercise)> {
        self.steps.iter().flat_map(|step| {
            step.exercises.iter().filter(|exercise| exercise.is_grounding()).map(move |exercise| (step, exercise))
        })
    }
}

/// How a person follows a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgramMode {
    /// On their own: partner exercises are never suggested.
    Solo,
    /// With a partner who does not use the app.
    Partnered,
    /// Both partners in the app, linked.
    Couple,
}

/// One step of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// 1-based position in the program.
    pub number: u8,
    pub slug: String,
    pub title: String,
    /// What the step is for, in a sentence or two.
    pub purpose: String,
    /// Four to eight exercises; at least one is solo and one is intensity 1.
    pub exercises: Vec<Exercise>,
}

/// One exercise. Its `id` is stored in check-ins, so it never changes once shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Exercise {
    /// Stable id, unique across the catalog: `a-z`, `0-9` and `-`.
    pub id: String,
    pub title: String,
    pub kind: ExerciseKind,
    pub mode: ExerciseMode,
    pub intensity: Intensity,
    /// Suggested duration, 1 to 120 minutes.
    #[schema(minimum = 1, maximum = 120)]
    pub minutes: u16,
    pub instructions: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_note: Option<String>,
}

impl Exercise {
    /// Whether this exercise can be done without a partner.
    pub fn is_solo(&self) -> bool {
        self.mode == ExerciseMode::Solo
    }

    /// A calm, solo, lowest-intensity mindfulness exercise: what the app offers when
    /// a check-in shows distress.
    pub fn is_grounding(&self) -> bool {
        self.is_solo() && self.kind == ExerciseKind::Mindfulness && self.intensity == Intensity::LOWEST
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseKind {
    Journal,
    Reflection,
    Conversation,
    Vulnerability,
    Boundary,
    Touch,
    Mindfulness,
    Resource,
}

/// Who does the exercise. Partner exercises are only suggested to people following
/// the program with a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseMode {
    Solo,
    Partner,
}

/// How emotionally demanding an exercise is, from 1 (gentle) to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "u8", into = "u8")]
#[schema(minimum = 1, maximum = 5)]
pub struct Intensity(u8);

impl Intensity {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 5;
    pub const LOWEST: Intensity = Intensity(Self::MIN);
    pub const HIGHEST: Intensity = Intensity(Self::MAX);

    pub fn new(value: u8) -> Result<Self, String> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("intensity must be between {} and {}, got {value}", Self::MIN, Self::MAX))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// One level up, saturating at the highest.
    pub fn next_up(self) -> Self {
        Self(self.0.saturating_add(1).min(Self::MAX))
    }
}

impl TryFrom<u8> for Intensity {
    type Error = String;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Intensity> for u8 {
    fn from(intensity: Intensity) -> Self {
        intensity.0
    }
}

impl fmt::Display for Intensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
