//! Couple mode's rule for exercises done together: go at the pace of the slower
//! person. Each keeps their own step and pace; a partner exercise is suggested
//! only at steps both have reached, at the lower of the two intensity ladders
//! and the slower pace, and not at all while either person is in distress
//! (and nothing says whose distress it was). Pure; `today` reads it through
//! `Together::Couple`.

use super::pacing::Pace;

/// What the rule needs of one person (never shown to the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoupleMember {
    pub step: u8,
    /// The person's intensity ladder (`today::max_intensity`).
    pub max_intensity: u8,
    pub pace: Pace,
    /// A distress signal within `today::DISTRESS_WINDOW`.
    pub distressed: bool,
}

/// Where partner exercises may be suggested for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerExercises {
    /// Partner exercises of steps up to this one.
    pub up_to_step: u8,
    pub max_intensity: u8,
    pub pace: Pace,
}

/// The shared limits, or `None` when partner exercises step aside for both.
pub fn partner_exercises(me: CoupleMember, partner: CoupleMember) -> Option<PartnerExercises> {
    if me.distressed || partner.distressed {
        return None;
    }
    let slower = if me.pace.sessions_per_week() <= partner.pace.sessions_per_week() { me.pace } else { partner.pace };
    Some(PartnerExercises {
        up_to_step: me.step.min(partner.step),
        max_intensity: me.max_intensity.min(partner.max_intensity),
        pace: slower,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(step: u8, max_intensity: u8, pace: Pace) -> CoupleMember {
        CoupleMember { step, max_intensity, pace, distressed: false }
    }

    #[test]
    fn the_couple_goes_at_the_slower_person_s_pace_and_reach() {
        let ana = member(5, 4, Pace::Committed);
        let ben = member(3, 2, Pace::Gentle);
        let expected = Some(PartnerExercises { up_to_step: 3, max_intensity: 2, pace: Pace::Gentle });
        assert_eq!(partner_exercises(ana, ben), expected);
        assert_eq!(partner_exercises(ben, ana), expected, "the same for both");
        let mixed = partner_exercises(member(2, 5, Pace::Gentle), member(4, 1, Pace::Steady));
        assert_eq!(mixed, Some(PartnerExercises { up_to_step: 2, max_intensity: 1, pace: Pace::Gentle }));
    }

    #[test]
    fn either_person_s_distress_sets_partner_exercises_aside_for_both() {
        let calm = member(4, 3, Pace::Steady);
        let distressed = CoupleMember { distressed: true, ..calm };
        assert_eq!(partner_exercises(calm, distressed), None);
        assert_eq!(partner_exercises(distressed, calm), None);
        assert!(partner_exercises(calm, calm).is_some());
    }
}
