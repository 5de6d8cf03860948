// A small typed client written the way an app developer would, against the types
// openapi-typescript generates from Attune's OpenAPI document. CI compiles it with
// `tsc --noEmit`: a route change that breaks what an app relies on here (a renamed
// field, a changed status, a record column gone) fails the build.

import type { components, operations } from "./generated/api";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];

/** The JSON body an operation takes. */
type Body<Op> = Op extends { requestBody: { content: { "application/json": infer B } } } ? B : never;
/** The JSON an operation answers with a given status. */
type Answer<Op, Status extends number> = Op extends {
  responses: { [S in Status]: { content: { "application/json": infer R } } };
}
  ? R
  : never;
/** The query parameters of an operation. */
type QueryOf<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
  }
}

export class AttuneClient {
  private accessToken: string | undefined;

  constructor(private readonly baseUrl: string) {}

  private async call<T>(method: string, path: string, expected: number, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.accessToken !== undefined) headers.authorization = `Bearer ${this.accessToken}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(new URL(path, this.baseUrl), {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
    });
    if (response.status !== expected) {
      throw new ApiError(response.status, (await response.json()) as Problem);
    }
    return (await response.json()) as T;
  }

  /** POST /v1/auth/register: 201 with the new account, signed in. */
  async signUp(account: Body<operations["register"]>): Promise<Answer<operations["register"], 201>> {
    const signedIn = await this.call<Answer<operations["register"], 201>>("POST", "/v1/auth/register", 201, account);
    this.accessToken = signedIn.access_token;
    return signedIn;
  }

  /** GET /v1/sync: WatermelonDB's pullChanges. */
  async pullChanges(
    lastPulledAt: number | null,
    schemaVersion: number,
  ): Promise<Answer<operations["pullChanges"], 200>> {
    const query: QueryOf<operations["pullChanges"]> = {
      last_pulled_at: lastPulledAt === null ? null : String(lastPulledAt),
      schema_version: String(schemaVersion),
    };
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value != null) search.set(key, value);
    return this.call("GET", `/v1/sync?${search}`, 200);
  }

  /** POST /v1/sync: WatermelonDB's pushChanges; all applied or none. */
  async pushChanges(
    lastPulledAt: number,
    changes: Schemas["Changes"],
  ): Promise<Answer<operations["pushChanges"], 200>> {
    const body: Body<operations["pushChanges"]> = { changes };
    return this.call("POST", `/v1/sync?last_pulled_at=${lastPulledAt}`, 200, body);
  }

  /** GET /v1/today: today's suggestion, rest, or grounding with support. */
  async today(): Promise<Answer<operations["getToday"], 200>> {
    return this.call("GET", "/v1/today", 200);
  }
}

/** What an app does on its first day, using the answers' fields. */
export async function firstDay(baseUrl: string): Promise<string> {
  const client = new AttuneClient(baseUrl);
  const { user, expires_in } = await client.signUp({
    email: "sam@example.org",
    password: "a calm passphrase",
    display_name: "Sam",
    timezone: "Europe/Berlin",
  });

  const first = await client.pullChanges(null, 1);
  const checkin: Schemas["CheckinRecord"] = {
    id: "k3mB7qY2x9ZcT1aP",
    occurred_at: Date.now(),
    mood: 3,
    anxiety: 4,
    comfort: 3,
    completed: true,
    exercise_id: null,
    note: "Calmer after the walk.",
    tags: JSON.stringify(["calm"]),
  };
  const boundary: Schemas["BoundaryRecord"] = {
    id: "b7",
    kind: "physical",
    text: "Ask before a hug.",
    shared_with_partner: false,
    active: true,
  };
  const pushed = await client.pushChanges(first.timestamp, {
    checkins: { created: [checkin], updated: [], deleted: [] },
    boundaries: { created: [boundary], updated: [], deleted: [] },
    journal_entries: { created: [], updated: [], deleted: ["x8Jq2LmN0pRs4TuV"] },
  });

  const next = await client.pullChanges(pushed.timestamp, 1);
  const moods: number[] = (next.changes.checkins?.updated ?? []).map((c) => c.mood);
  const deleted: string[] = next.changes.journal_entries?.deleted ?? [];
  const replacing: boolean = next.experimentalStrategy === "replacement";

  const today = await client.today();
  const title: string | undefined = today.suggestion?.exercise.title;
  return [user.display_name, expires_in, moods.length, deleted.length, replacing, today.kind, title].join(" ");
}
