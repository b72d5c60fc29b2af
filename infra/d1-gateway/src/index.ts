// imgbt's D1 gateway: D1's REST query endpoint, answered from a D1 binding.
//
// D1's REST API shares Cloudflare's account-wide API rate limit (1,200 requests per 5 minutes); a
// Worker reaches D1 through its binding without that limit. This Worker answers the one endpoint
// imgbt's D1 client uses, in D1's own protocol, so the functions switch to it by setting
// IMGBT_D1_BASE_URL alone:
//
//   POST {base}/accounts/{account_id}/d1/database/{database_id}/query
//   Authorization: Bearer <GATEWAY_TOKEN>
//   {"batch":[{"sql":"…","params":[…]},…]}   (or a single {"sql","params"})
//
// - Any other path or method: 404 (Cloudflare's routing error, code 7003), before any auth.
// - Missing or wrong bearer token: 401, code 10000. The token is the Worker secret GATEWAY_TOKEN,
//   compared in constant time (both sides hashed to SHA-256 first, so lengths leak nothing).
//   While a secret is rotated, GATEWAY_TOKEN_PREVIOUS (optional) is accepted too.
// - Another account id than ACCOUNT_ID: 403, code 9109; another database id than DATABASE_ID:
//   404, code 7404.
// - A body that is not JSON: 400, code 6007; JSON without `sql`/`batch`, or a parameter that is
//   an array or object: 400, code 7400.
// - All statements of a request run as one D1 batch, which D1 runs as one transaction: if one
//   fails, none is applied, and the answer is 400, code 7500, with the engine's message
//   (`UNIQUE constraint failed: assets.r2_key: SQLITE_CONSTRAINT`). D1's limits (100 bound
//   parameters, 100,000 bytes per statement) are checked before anything runs.
// - A failure that is not the SQL's (D1 unreachable, reset, overloaded): 500, code 7500, which
//   the client retries as it retries D1's own 5xx answers.
// - Success: 200, {"success":true,"errors":[],"messages":[],"result":[{"success","results","meta"},…]},
//   one result per statement, `meta` as the binding returns it (`changes`, `last_row_id`, …).
//
// One difference from the REST API: an entry's `sql` is one statement (imgbt's client sends one
// per entry). The binding runs a `;`-separated list in one prepared statement and returns one
// result for it, where the REST API returns one per statement; the client then sees a result
// count that does not match and fails the call rather than misreading it.
//
// JSON numbers are JavaScript numbers here: integer parameters beyond ±2^53 lose precision (imgbt
// binds sizes, dimensions and counts, far below that).
//
// Nothing here logs a header or a body: only the error messages of failed requests.

/// The part of the Workers D1 binding this Worker uses.
interface D1PreparedStatement {
  bind(...values: unknown[]): D1PreparedStatement;
}

interface D1Result {
  success: boolean;
  results?: unknown[];
  meta?: Record<string, unknown>;
}

interface D1Database {
  prepare(sql: string): D1PreparedStatement;
  batch(statements: D1PreparedStatement[]): Promise<D1Result[]>;
}

/// `crypto.subtle` in workerd has this non-standard method.
interface TimingSafeSubtle {
  timingSafeEqual(a: ArrayBuffer, b: ArrayBuffer): boolean;
}

export interface Env {
  DB: D1Database;
  /// The bearer secret (`wrangler secret put GATEWAY_TOKEN`).
  GATEWAY_TOKEN?: string;
  /// The secret before the last rotation, accepted until deleted (optional).
  GATEWAY_TOKEN_PREVIOUS?: string;
  /// The account and database ids the functions send in the path.
  ACCOUNT_ID?: string;
  DATABASE_ID?: string;
}

type Param = string | number | boolean | null;

interface Statement {
  sql: string;
  params: Param[];
}

interface ApiMessage {
  code: number;
  message: string;
}

/// D1's documented limits.
const MAX_BOUND_PARAMS = 100;
const MAX_STATEMENT_BYTES = 100_000;

/// `/accounts/{a}/d1/database/{d}/query`, under the base URL's own path when it has one
/// (`/client/v4`, as on api.cloudflare.com).
const QUERY_PATH = /^(?:\/client\/v4)?\/accounts\/([^/]+)\/d1\/database\/([^/]+)\/query$/;

/// A request refused with D1's envelope.
class Refusal {
  constructor(
    readonly status: number,
    readonly code: number,
    readonly message: string,
  ) {}
}

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function refuse(refusal: Refusal): Response {
  const errors: ApiMessage[] = [{ code: refusal.code, message: refusal.message }];
  return reply(refusal.status, { success: false, errors, messages: [], result: null });
}

const malformed = (detail: string) =>
  new Refusal(400, 7400, `The request is malformed: ${detail}`);

async function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/// True when `header` is `Bearer <secret>` for one of `secrets`. The tokens are hashed first, so
/// each comparison takes the same time whatever the given token's length and content.
async function authorized(header: string | null, secrets: (string | undefined)[]): Promise<boolean> {
  const accepted = secrets.filter((secret): secret is string => !!secret);
  if (accepted.length === 0) {
    console.error("GATEWAY_TOKEN is not set: every request is refused (wrangler secret put GATEWAY_TOKEN)");
    return false;
  }
  if (header === null || !header.startsWith("Bearer ")) {
    return false;
  }
  const given = await sha256(header.slice("Bearer ".length).trim());
  const subtle = crypto.subtle as unknown as TimingSafeSubtle;
  let match = false;
  for (const secret of accepted) {
    // No early exit: every accepted secret is compared.
    match = subtle.timingSafeEqual(given, await sha256(secret)) || match;
  }
  return match;
}

function parseParam(value: unknown): Param {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) {
    return value as Param;
  }
  throw malformed("params must be strings, numbers, booleans or null");
}

function parseStatement(value: unknown): Statement {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed("each statement must be an object {sql, params}");
  }
  const entry = value as { sql?: unknown; params?: unknown };
  if (typeof entry.sql !== "string") {
    throw malformed("sql is required and must be a string");
  }
  if (entry.params !== undefined && entry.params !== null && !Array.isArray(entry.params)) {
    throw malformed("params must be an array");
  }
  const params = ((entry.params as unknown[] | null | undefined) ?? []).map(parseParam);
  return { sql: entry.sql, params };
}

function parseBody(text: string): Statement[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, 6007, "Malformed JSON in request body");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw malformed("expected a JSON object");
  }
  const batch = (body as { batch?: unknown }).batch;
  if (batch === undefined) {
    return [parseStatement(body)];
  }
  if (!Array.isArray(batch)) {
    throw malformed("batch must be an array of {sql, params}");
  }
  if (batch.length === 0) {
    throw malformed("batch is empty");
  }
  return batch.map(parseStatement);
}

function checkLimits(statements: Statement[]): void {
  const bytes = new TextEncoder();
  for (const statement of statements) {
    if (statement.params.length > MAX_BOUND_PARAMS) {
      throw new Refusal(
        400,
        7500,
        `too many SQL variables: ${statement.params.length} bound, at most ${MAX_BOUND_PARAMS}: SQLITE_ERROR`,
      );
    }
    const size = bytes.encode(statement.sql).length;
    if (size > MAX_STATEMENT_BYTES) {
      throw new Refusal(
        400,
        7500,
        `statement too long: ${size} bytes, at most ${MAX_STATEMENT_BYTES}: SQLITE_TOOBIG`,
      );
    }
  }
}

/// D1's own failures, not the statement's (its docs list these as transient): retried by the
/// client, as it retries D1's 5xx answers.
const TRANSIENT =
  /Network connection lost|storage caused object to be reset|reset because its code was updated|overloaded|queued for too long|internal error|exceeded its memory limit/i;

/// The binding's error as the REST API words it: without the binding's `D1_ERROR: ` prefix;
/// D1's own transient failure (500), or else the statement's fault (400), which sending it again
/// would not change.
function failure(error: unknown): Refusal {
  const raw = error instanceof Error ? error.message : String(error);
  const message = raw.replace(/^(D1_[A-Z_]+:\s*)+/, "").trim() || "internal error";
  return TRANSIENT.test(message) ? new Refusal(500, 7500, message) : new Refusal(400, 7500, message);
}

async function handle(request: Request, env: Env): Promise<Response> {
  const path = new URL(request.url).pathname;
  const route = QUERY_PATH.exec(path);
  if (route === null || request.method !== "POST") {
    return refuse(
      new Refusal(404, 7003, "Could not route to this path, perhaps your object identifier is invalid?"),
    );
  }
  if (!(await authorized(request.headers.get("authorization"), [env.GATEWAY_TOKEN, env.GATEWAY_TOKEN_PREVIOUS]))) {
    return refuse(new Refusal(401, 10000, "Authentication error"));
  }
  const [, account, database] = route;
  if (!env.ACCOUNT_ID || !env.DATABASE_ID) {
    console.error("ACCOUNT_ID or DATABASE_ID is not set in wrangler.toml's [vars]: every query is refused");
  }
  if (!env.ACCOUNT_ID || account !== env.ACCOUNT_ID) {
    return refuse(new Refusal(403, 9109, "Unauthorized to access requested resource"));
  }
  if (!env.DATABASE_ID || database !== env.DATABASE_ID) {
    return refuse(new Refusal(404, 7404, `The database ${database} could not be found`));
  }
  try {
    const statements = parseBody(await request.text());
    checkLimits(statements);
    const prepared = statements.map((s) => env.DB.prepare(s.sql).bind(...s.params));
    let results: D1Result[];
    try {
      results = await env.DB.batch(prepared);
    } catch (error) {
      const refusal = failure(error);
      if (refusal.status >= 500) {
        console.error(`D1 batch failed: ${refusal.message}`);
      }
      return refuse(refusal);
    }
    const result = results.map((r) => ({
      success: r.success,
      results: r.results ?? [],
      meta: r.meta ?? {},
    }));
    return reply(200, { success: true, errors: [], messages: [], result });
  } catch (error) {
    if (error instanceof Refusal) {
      return refuse(error);
    }
    // prepare() and bind() throw for statements D1 refuses before running them.
    return refuse(failure(error));
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    try {
      return await handle(request, env);
    } catch (error) {
      console.error(`gateway error: ${error instanceof Error ? error.message : String(error)}`);
      return refuse(new Refusal(500, 7500, "internal error"));
    }
  },
};
