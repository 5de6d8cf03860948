//! Enrollment in a program: joining, pace and mode, pausing, moving between steps,
//! and today's suggestion. The decisions are the pure rules in `domain::progress`
//! and `domain::today`; this module loads their inputs and stores their outcomes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    Clock,
    content::{self, Program, ProgramMode},
    domain::{
        ValidationErrors,
        couple::{CoupleMember, partner_exercises},
        history::CheckinSummary,
        pacing::{Pace, week_days},
        progress::{LAST_STEP, Position, UnmetReason, blockers},
        today::{DISTRESS_WINDOW, TodayPlan, Together, ladder, plan},
    },
    entities::{
        enrollment::{self, Entity as Enrollment, StoredMode},
        partner_link, step_change, user,
    },
    person_cache::{FreshCache, PersonChanges},
    sync::summary,
};

/// How long `today` says, kindly, that couple mode ended with the link.
pub const COUPLE_ENDED_NOTE: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("already enrolled in a program")]
    AlreadyEnrolled,
    /// Couple mode needs a partner linked in the app.
    #[error("couple mode needs a linked partner")]
    NoLinkedPartner,
    #[error("not enrolled in a program")]
    NotEnrolled,
    #[error("not ready to advance")]
    NotReady(Vec<UnmetReason>),
    #[error("the enrollment changed meanwhile; try again")]
    Changed,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("the program content is broken")]
    Content(#[from] content::ContentError),
    /// A stored enrollment names a program this release does not know (a release
    /// removed it, or the row was edited by hand). An unknown pace or mode fails
    /// the read itself (`DbErr::Type`, see [`StoredMode`]).
    #[error("the stored enrollment names {0}, which this release does not know")]
    Unknown(String),
}

impl From<ValidationErrors> for EnrollmentError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

#[derive(Debug, Clone, Default)]
pub struct EnrollmentPatch {
    pub pace: Option<String>,
    pub mode: Option<String>,
    pub paused: Option<bool>,
}

/// An enrollment with its values parsed.
#[derive(Debug, Clone)]
pub struct Current {
    pub model: enrollment::Model,
    pub pace: Pace,
    pub mode: ProgramMode,
    pub program: &'static Program,
}

impl Current {
    pub fn position(&self) -> Position {
        Position {
            step: u8::try_from(self.model.step).unwrap_or(1),
            step_started_at: ms_to_time(self.model.step_started_at),
            pace: self.pace,
            paused: self.model.paused_at.is_some(),
        }
    }
}

/// Today's plan with what the API shows beside it.
#[derive(Debug, Clone)]
pub struct Today {
    pub plan: TodayPlan<'static>,
    pub resources: Option<&'static content::CountryResources>,
    pub local_date: chrono::NaiveDate,
}

/// What `today` reads, kept per person for a second (`person_cache`).
pub type ProgramCache = FreshCache<Arc<TodayInputs>>;

#[derive(Clone)]
pub struct Enrollments {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    cache: Arc<ProgramCache>,
    /// Told of every step change once it commits (the program cache here and
    /// on the other replicas).
    changes: PersonChanges,
}

impl std::fmt::Debug for Enrollments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollments").finish_non_exhaustive()
    }
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn catalog() -> Result<&'static content::Catalog, EnrollmentError> {
    Ok(content::catalog()?)
}

/// Couple mode needs a partner linked in the app (`linked`). The words are the
/// stored ones ([`StoredMode`]).
fn parse_mode(raw: &str, program: &Program, linked: bool) -> Result<ProgramMode, EnrollmentError> {
    let mode = StoredMode::try_from_value(&raw.to_owned())
        .map(ProgramMode::from)
        .map_err(|_| ValidationErrors::single("mode", "must be solo, partnered or couple"))?;
    if mode == ProgramMode::Couple && !linked {
        return Err(EnrollmentError::NoLinkedPartner);
    }
    if !program.modes.contains(&mode) {
        return Err(
            ValidationErrors::single("mode", format!("the program `{}` has no {raw} mode", program.slug)).into()
        );
    }
    Ok(mode)
}

impl Enrollments {
    /// `cache`: the program cache, one of those `changes` forgets a person in.
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        cache: Arc<ProgramCache>,
        changes: PersonChanges,
    ) -> Self {
        Self { db, clock, cache, changes }
    }

    /// Enrolls at step 1, on `conn`: a step of the use case `Services::enroll`,
    /// which also schedules the reminders in the same transaction.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn enroll(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        program: &str,
        mode: &str,
        pace: &str,
        linked: bool,
    ) -> Result<Current, EnrollmentError> {
        let catalog = catalog()?;
        let mut errors = ValidationErrors::new();
        let program = catalog.program(program);
        if program.is_none() {
            errors.add("program", "is not a known program (see GET /v1/programs)");
        }
        let pace = errors.check("pace", Pace::parse(pace));
        let (Some(program), Some(pace)) = (program, pace) else { return Err(errors.into()) };
        let mode = parse_mode(mode, program, linked)?;
        let now = self.clock.now_ms();
        let model = enrollment::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            program: Set(program.slug.clone()),
            mode: Set(mode.into()),
            pace: Set(pace.into()),
            step: Set(1),
            step_started_at: Set(now),
            paused_at: Set(None),
            couple_ended_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(conn)
        .await
        .map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => EnrollmentError::AlreadyEnrolled,
            _ => EnrollmentError::Database(e),
        })?;
        tracing::info!(program = %program.slug, "enrolled");
        Ok(Current { model, pace, mode, program })
    }

    /// Unlinked: a couple enrollment of these people becomes `partnered` (their
    /// partner exercises stay possible, offline), on `conn`.
    pub async fn leave_couple_mode(&self, conn: &impl ConnectionTrait, people: &[Uuid]) -> Result<(), DbErr> {
        enrollment::Entity::update_many()
            .col_expr(enrollment::Column::Mode, Expr::value(StoredMode::Partnered))
            .col_expr(enrollment::Column::CoupleEndedAt, Expr::value(self.clock.now_ms()))
            .col_expr(enrollment::Column::UpdatedAt, Expr::value(self.clock.now_ms()))
            .filter(enrollment::Column::UserId.is_in(people.iter().copied()))
            .filter(enrollment::Column::Mode.eq(StoredMode::Couple))
            .exec(conn)
            .await
            .map(|_| ())
    }

    pub async fn current(&self, user_id: Uuid) -> Result<Current, EnrollmentError> {
        current_on(&self.db, user_id).await
    }

    /// Changes pace or mode, pauses or resumes, on `conn`: a step of the use case
    /// `Services::update_enrollment`, which moves the reminders in the same
    /// transaction.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn update(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        patch: EnrollmentPatch,
        linked: bool,
    ) -> Result<Current, EnrollmentError> {
        let current = current_on(conn, user_id).await?;
        let mut errors = ValidationErrors::new();
        let pace = patch.pace.map(|p| errors.check("pace", Pace::parse(&p)));
        errors.into_result()?;
        let mode = patch.mode.map(|m| parse_mode(&m, current.program, linked)).transpose()?;
        let now = self.clock.now_ms();
        let mut model: enrollment::ActiveModel = current.model.clone().into();
        if let Some(Some(pace)) = pace {
            model.pace = Set(pace.into());
        }
        if let Some(mode) = mode {
            model.mode = Set(mode.into());
            // A mode chosen again is the person's own: no more word of an ended couple.
            model.couple_ended_at = Set(None);
        }
        match (patch.paused, current.model.paused_at) {
            (Some(true), None) => model.paused_at = Set(Some(now)),
            // Time paused does not count against the step's minimum time.
            (Some(false), Some(paused_at)) => {
                model.paused_at = Set(None);
                model.step_started_at = Set(current.model.step_started_at + (now - paused_at));
            }
            _ => {}
        }
        model.updated_at = Set(now);
        model.update(conn).await?;
        current_on(conn, user_id).await
    }

    /// Moves to the next step if every rule allows; otherwise lists every reason.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn advance(&self, user_id: Uuid) -> Result<Current, EnrollmentError> {
        let current = self.current(user_id).await?;
        let summary = summary::read(&self.db, user_id, None).await?;
        let unmet = blockers(&current.position(), current.program, &summary, self.clock.now());
        if !unmet.is_empty() {
            return Err(EnrollmentError::NotReady(unmet));
        }
        self.move_to(&current, current.model.step + 1).await
    }

    /// Goes back one step: always allowed. At step 1 it stays at step 1.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn step_back(&self, user_id: Uuid) -> Result<Current, EnrollmentError> {
        let current = self.current(user_id).await?;
        if current.model.step <= 1 {
            return Ok(current);
        }
        self.move_to(&current, current.model.step - 1).await
    }

    async fn move_to(&self, current: &Current, to: i64) -> Result<Current, EnrollmentError> {
        let to = to.clamp(1, i64::from(LAST_STEP));
        let now = self.clock.now_ms();
        let txn = crate::db::begin(&self.db).await?;
        // Conditional on the step read, so two taps at once move one step, not two.
        let moved = Enrollment::update_many()
            .col_expr(enrollment::Column::Step, Expr::value(to))
            .col_expr(enrollment::Column::StepStartedAt, Expr::value(now))
            .col_expr(enrollment::Column::UpdatedAt, Expr::value(now))
            .filter(enrollment::Column::Id.eq(current.model.id))
            .filter(enrollment::Column::Step.eq(current.model.step))
            .exec(&txn)
            .await?;
        if moved.rows_affected == 0 {
            return Err(EnrollmentError::Changed);
        }
        step_change::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(current.model.user_id),
            from_step: Set(current.model.step),
            to_step: Set(to),
            changed_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        self.changes.changed(current.model.user_id).await;
        tracing::info!(from = current.model.step, to, "step changed");
        self.current(current.model.user_id).await
    }

    /// [`today`] for a request: what the plan is computed from is
    /// kept in this process's program cache (`person_cache`) and served while
    /// fresh, so an app opening (or its widget refreshing) costs one read a
    /// second. Every change to what it holds (a pushed check-in, the
    /// enrollment, the partner link, the partner's own) forgets it here before
    /// the change is answered, and on the other replicas when Redis delivers
    /// the announcement. The plan itself is computed anew on every call, at
    /// this moment.
    pub async fn today_for_request(&self, user: &user::Model) -> Result<Today, EnrollmentError> {
        let (now, tz) = (self.clock.now(), zone(user));
        let week = week_days(now, tz);
        let inputs = match self.cache.get(user.id).filter(|kept| kept.week == week) {
            Some(kept) => kept,
            None => {
                let start = self.cache.begin_read();
                let inputs = Arc::new(TodayInputs::read(&self.db, user.id, week).await?);
                self.cache.keep_for(start, user.id, user.id, inputs.partner_id, inputs.clone());
                inputs
            }
        };
        inputs.today(user, now, tz)
    }
}

/// Today's suggestion for `user` at `now`, in their time zone, with resources
/// when the plan calls for support. Read on `conn`: the pool, or a caller's
/// transaction (the reminder claim's, which on SQLite holds the only
/// connection).
pub async fn today(
    conn: &impl ConnectionTrait,
    user: &user::Model,
    now: DateTime<Utc>,
) -> Result<Today, EnrollmentError> {
    let tz = zone(user);
    let inputs = TodayInputs::read(conn, user.id, week_days(now, tz)).await?;
    inputs.today(user, now, tz)
}

fn zone(user: &user::Model) -> chrono_tz::Tz {
    user.timezone.parse().unwrap_or(chrono_tz::UTC)
}

/// Everything today's plan is computed from, read in one go: the enrollment,
/// this week's summary (`week`: its local midnights) and, in couple mode, the
/// linked partner's enrollment and summary when they are in couple mode too.
/// No clock reading is in it: the plan is computed from it at the moment asked.
#[derive(Debug)]
pub struct TodayInputs {
    current: Current,
    week: [DateTime<Utc>; 8],
    summary: CheckinSummary,
    /// The linked partner (couple mode only): whose changes make this stale.
    partner_id: Option<Uuid>,
    /// Their state, when partner exercises are possible at all: linked, in
    /// couple mode, in the same program and not paused. Neither their sessions
    /// nor their zone matter: only their step, ladder, pace and distress.
    partner: Option<(Current, CheckinSummary)>,
}

impl TodayInputs {
    async fn read(
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        week: [DateTime<Utc>; 8],
    ) -> Result<Self, EnrollmentError> {
        let current = current_on(conn, user_id).await?;
        let summary = summary::read(conn, user_id, Some(&week)).await?;
        let mut inputs = Self { current, week, summary, partner_id: None, partner: None };
        if inputs.current.mode != ProgramMode::Couple {
            return Ok(inputs);
        }
        let Some(link) = partner_link::Entity::find_by_id(user_id).one(conn).await? else { return Ok(inputs) };
        inputs.partner_id = Some(link.partner_id);
        let partner = match current_on(conn, link.partner_id).await {
            Ok(partner) => partner,
            Err(EnrollmentError::NotEnrolled | EnrollmentError::Unknown(_)) => return Ok(inputs),
            Err(error) => return Err(error),
        };
        if partner.mode == ProgramMode::Couple
            && partner.model.program == inputs.current.model.program
            && partner.model.paused_at.is_none()
        {
            let partner_summary = summary::read(conn, link.partner_id, None).await?;
            inputs.partner = Some((partner, partner_summary));
        }
        Ok(inputs)
    }

    fn today(&self, user: &user::Model, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<Today, EnrollmentError> {
        let current = &self.current;
        let plan = plan(current.program, &current.position(), self.together(now), &self.summary, now, tz);
        let resources =
            plan.support.then(|| catalog().map(|c| c.resources_for(user.country.as_deref()))).transpose()?;
        Ok(Today { plan, resources, local_date: now.with_timezone(&tz).date_naive() })
    }

    /// Whom today's exercise may involve. In couple mode, partner exercises
    /// need the partner linked and enrolled, in couple mode too, in the same
    /// program and not paused; then they keep within what both share
    /// (`domain::couple`). What is read of the partner decides only that;
    /// nothing of it is shown.
    fn together(&self, now: DateTime<Utc>) -> Together {
        let current = &self.current;
        let ended_lately = |at: Option<i64>| at.is_some_and(|at| now - ms_to_time(at) < COUPLE_ENDED_NOTE);
        match current.mode {
            ProgramMode::Solo => Together::Alone,
            ProgramMode::Partnered if ended_lately(current.model.couple_ended_at) => Together::CoupleEnded,
            ProgramMode::Partnered => Together::Partnered,
            ProgramMode::Couple => {
                let member = |c: &Current, summary: &CheckinSummary| CoupleMember {
                    step: c.position().step,
                    max_intensity: ladder(c.program, summary),
                    pace: c.pace,
                    distressed: summary.distress_within(now, DISTRESS_WINDOW),
                };
                Together::Couple(self.partner.as_ref().and_then(|(partner, partner_summary)| {
                    partner_exercises(member(current, &self.summary), member(partner, partner_summary))
                }))
            }
        }
    }
}

/// The person's enrollment, read on `conn` (the pool, or a caller's transaction).
async fn current_on(conn: &impl ConnectionTrait, user_id: Uuid) -> Result<Current, EnrollmentError> {
    let model = Enrollment::find()
        .filter(enrollment::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .ok_or(EnrollmentError::NotEnrolled)?;
    let program = catalog()?
        .program(&model.program)
        .ok_or_else(|| EnrollmentError::Unknown(format!("program `{}`", model.program)))?;
    let (pace, mode) = (model.pace.into(), model.mode.into());
    Ok(Current { model, pace, mode, program })
}
