//! Professional-help resources (crisis lines, helplines, therapist directories),
//! keyed by country with a general list for everyone.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The whole resources file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub general: GeneralResources,
    /// Keyed by ISO 3166-1 alpha-2 code in upper case; each list starts with the
    /// local emergency number.
    #[serde(default)]
    pub countries: BTreeMap<String, Vec<Resource>>,
}

/// Resources for everyone, wherever they live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralResources {
    /// Shown with the general list when the person's country has no list of its
    /// own: there is no universal emergency number, so it says to call the local one.
    pub notice: String,
    pub entries: Vec<Resource>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub name: String,
    pub kind: ResourceKind,
    /// What the service is, in a sentence.
    pub description: String,
    /// Number to call, as dialled locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A second number that reaches the same service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_phone: Option<String>,
    /// How to reach the service by text message, e.g. "Text START to 88788".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Website (https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Opening hours, e.g. "24/7", where the service states them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
    /// When the details were last checked against the service itself.
    pub last_verified: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// The local emergency number (police, ambulance).
    Emergency,
    /// Immediate support in a crisis, including suicidal thoughts.
    CrisisLine,
    /// Support for a specific situation, such as abuse or assault.
    Helpline,
    /// A place to find therapists or helplines.
    Directory,
    /// A counselling or therapy service.
    Therapy,
}

/// The resources to show one person: their country's services first (emergency
/// number first of all), then the general ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CountryResources {
    /// The country the list is for (ISO 3166-1 alpha-2), or `null` when no country
    /// was given or there is no list for it and the general list answers.
    pub country: Option<String>,
    /// Shown above the entries when present: what to do in immediate danger.
    pub notice: Option<String>,
    pub entries: Vec<Resource>,
}

impl Resources {
    /// The answer for people without a country-specific list.
    pub(crate) fn general_answer(&self) -> CountryResources {
        CountryResources {
            country: None,
            notice: Some(self.general.notice.clone()),
            entries: self.general.entries.clone(),
        }
    }

    /// The answer for each listed country, computed once so a lookup is a map read.
    pub(crate) fn country_answers(&self) -> impl Iterator<Item = (String, CountryResources)> {
        self.countries.iter().map(|(code, entries)| {
            let answer = CountryResources {
                country: Some(code.clone()),
                notice: None,
                entries: entries.iter().chain(&self.general.entries).cloned().collect(),
            };
            (code.clone(), answer)
        })
    }
}

/// Upper-cases a requested country code; `None` unless it is two ASCII letters.
pub(crate) fn normalise_country(raw: &str) -> Option<String> {
    let code = raw.trim();
    (code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic())).then(|| code.to_ascii_uppercase())
}
