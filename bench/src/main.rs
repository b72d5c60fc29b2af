//! `cargo run --release -p imgbt-bench [-- --quick]`: imgbt's benchmark. Prints one markdown table
//! in which every figure is a ratio against a floor measured in the same run, or a count.
//!
//! Method: each measured path runs interleaved with its floor (A, B, then B, A, …) after a warm-up,
//! so that a noisy machine slows both alike; each figure is the median of its runs. Requests are
//! built before the clock starts and checked after it stops: the clock covers the handler alone.
//! The 200,000 assets of the depth rows are inserted directly with SQL, in one transaction.
//! See BENCH.md for the recorded numbers and what they mean.

use imgbt_test_servers::D1Faults;
use imgbt_tests::{Backend, Form, TestApp, dispatch};
use lambda_http::Body;
use rusqlite::{Connection, OptionalExtension, params};
use shared::asset_columns;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const ASSETS: usize = 200_000;
const PAGE: usize = 50;
/// Depth 2,000 at 50 a page: the 41st page.
const DEPTH_PAGES: usize = 40;
const PARTITIONS: [&str; 3] = ["marketing", "product", "support"];
const COLLECTIONS: [&str; 4] = ["blog", "docs", "ads", "social"];
const CHANNELS: [&str; 5] = ["hero-images", "thumbnails", "avatars", "banners", "uploads"];

/// The key lookup every handler's batch starts with (`shared::auth::Credential::lookup`).
const LOOKUP: &str =
    "SELECT vault_id, kind FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL";
/// The get function's SELECT.
const GET: &str = concat!(
    "SELECT ",
    asset_columns!(),
    " FROM assets WHERE id = ?1 AND vault_id = ?2"
);

#[derive(Clone, Copy)]
struct Iters {
    warmup: usize,
    runs: usize,
}

impl Iters {
    fn new(quick: bool, warmup: usize, runs: usize) -> Self {
        if quick {
            Iters {
                warmup: warmup.div_ceil(5),
                runs: runs.div_ceil(5).max(3),
            }
        } else {
            Iters { warmup, runs }
        }
    }
}

/// A small deterministic generator (SplitMix64): the same store and the same picks every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Runs `a` and `b` alternately, each returning the time of its own timed part, `iters.warmup`
/// times unrecorded and then `iters.runs` times; the order flips every iteration. Medians (a, b).
async fn interleave(
    iters: Iters,
    mut a: impl AsyncFnMut(usize) -> Duration,
    mut b: impl AsyncFnMut(usize) -> Duration,
) -> (Duration, Duration) {
    for i in 0..iters.warmup {
        a(i).await;
        b(i).await;
    }
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for i in 0..iters.runs {
        let n = iters.warmup + i;
        if i % 2 == 0 {
            ta.push(a(n).await);
            tb.push(b(n).await);
        } else {
            tb.push(b(n).await);
            ta.push(a(n).await);
        }
    }
    (median(ta), median(tb))
}

/// One line of the table.
struct Line {
    row: String,
    measured: String,
    floor: String,
    ratio: String,
    budget: String,
    meets: String,
}

impl Line {
    /// A time against a time floor: the ratio is measured / floor, within `budget` when at most it.
    fn time(row: String, measured: Duration, floor: Duration, budget: f64) -> Self {
        let ratio = measured.as_secs_f64() / floor.as_secs_f64();
        Line {
            row,
            measured: show(measured),
            floor: show(floor),
            ratio: format!("{ratio:.2}×"),
            budget: format!("≤ {budget:.1}×"),
            meets: yes_no(ratio <= budget),
        }
    }

    /// A count against a floor of one.
    fn count(row: &str, count: u64, budget: u64) -> Self {
        Line {
            row: row.to_owned(),
            measured: format!("{count} request(s)"),
            floor: "1 request".to_owned(),
            ratio: format!("{count}×"),
            budget: if budget == 1 {
                "= 1".to_owned()
            } else {
                format!("≤ {budget}")
            },
            meets: yes_no(count <= budget),
        }
    }

    fn not_here(row: &str) -> Self {
        Line {
            row: row.to_owned(),
            measured: "not measured here: `imgbt-coldstart` (bench/coldstart)".to_owned(),
            floor: "—".to_owned(),
            ratio: "—".to_owned(),
            budget: "—".to_owned(),
            meets: "—".to_owned(),
        }
    }
}

fn yes_no(ok: bool) -> String {
    if ok { "yes" } else { "**no**" }.to_owned()
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn throughput(bytes: usize, d: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / 1e6 / d.as_secs_f64())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    if let Some(other) = std::env::args()
        .skip(1)
        .find(|a| a != "--quick" && a != "--bench")
    {
        eprintln!("usage: imgbt-bench [--quick]   (unknown argument {other:?})");
        std::process::exit(2);
    }
    let started = Instant::now();
    let mut lines = Vec::new();

    // The embedded default, seeded with 200,000 assets in one vault.
    let app = TestApp::new().await;
    let db_path = app.dir.path().join("imgbt.db");
    let seeding = Instant::now();
    let ids = seed(&db_path, &app.vault.vault_id, ASSETS).expect("seeding");
    eprintln!(
        "seeded {ASSETS} assets in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let floor = open_floor(&db_path);
    let hash = shared::auth::hash_key(app.pk());

    lines.push(bench_get(&app, &floor, &hash, &ids, Iters::new(quick, 300, 3000)).await);
    lines.push(bench_list(&app, &floor, &hash, Iters::new(quick, 200, 2000)).await);
    lines.extend(bench_depth(&app, Iters::new(quick, 40, 400)).await);
    let plans = query_plans(&floor, &app.vault.vault_id);
    drop(floor);
    drop(app);

    let uploads = TestApp::new().await;
    // An asset that stays in the channel, so that the untimed delete after each timed upload
    // does not prune the channel's directories, and each upload finds them as a store in use would.
    uploads
        .create(&Form::tiny("bench", "upload", "sizes", "keep.txt"))
        .await;
    let mut notes = Vec::new();
    for (mb, warmup, runs) in [(1, 3, 40), (10, 2, 15), (100, 1, 7)] {
        let (line, note) = bench_upload(&uploads, mb, Iters::new(quick, warmup, runs)).await;
        lines.push(line);
        notes.push(note);
    }
    drop(uploads);

    lines.extend(d1_counts().await);
    for row in ["cold start", "memory", "binary sizes (arm64 Lambda builds)"] {
        lines.push(Line::not_here(row));
    }

    println!("| row | measured | floor | ratio | budget | meets |");
    println!("|---|---|---|---|---|---|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            l.row, l.measured, l.floor, l.ratio, l.budget, l.meets
        );
    }
    println!();
    println!("Query plans of the list shapes (first page; a later page adds the cursor's range):");
    println!();
    println!("```");
    for (shape, plan) in plans {
        println!("{shape}: {plan}");
    }
    println!("```");
    println!();
    println!("Upload, where the time goes (medians):");
    println!();
    for note in notes {
        println!("- {note}");
    }
    eprintln!(
        "{} run, {:.0} s in all",
        if quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64()
    );
}

/// Inserts `n` assets into `vault` as the upload handler would write them (same columns and
/// formats), spread over partitions, collections and channels, `created_at` increasing (with the
/// odd tie, which the id breaks). Returns their ids.
fn seed(path: &Path, vault: &str, n: usize) -> rusqlite::Result<Vec<String>> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(n);
    {
        let mut insert = tx.prepare(concat!(
            "INSERT INTO assets (",
            asset_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ))?;
        let mut rng = Rng(0x1D6B_7A2E);
        // 2025-01-01T00:00:00Z, then 0–3 s apart: about three days for 200,000 assets.
        let mut ms: u64 = 1_735_689_600_000;
        for i in 0..n {
            ms += rng.below(3001) as u64;
            let partition = PARTITIONS[rng.below(PARTITIONS.len())];
            let collection = COLLECTIONS[rng.below(COLLECTIONS.len())];
            let channel = CHANNELS[rng.below(CHANNELS.len())];
            let filename = format!("img-{i:06}.jpg");
            let id = shared::ids::new_asset_id(ms);
            let r2_key =
                shared::asset::r2_key(vault, partition, collection, channel, &id, &filename);
            let size = 20_000 + rng.below(2_000_000) as i64;
            let (width, height) = (640 + rng.below(3200) as i64, 480 + rng.below(2400) as i64);
            let metadata = format!(r#"{{"alt":"Image {i}","credit":"Studio {}"}}"#, i % 17);
            let tags = format!(r#"["{channel}","batch-{}"]"#, i % 100);
            let now = shared::clock::format_ms(ms);
            insert.execute(params![
                id,
                vault,
                partition,
                collection,
                channel,
                filename,
                r2_key,
                size,
                "image/jpeg",
                width,
                height,
                metadata,
                tags,
                now,
                now
            ])?;
            ids.push(id);
        }
    }
    tx.commit()?;
    Ok(ids)
}

/// A connection of the floor's own to the same file, set up as the embedded store sets up its own.
fn open_floor(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("floor connection");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("foreign keys");
    conn.pragma_update(None, "mmap_size", shared::db::sqlite::MMAP_SIZE)
        .expect("mmap_size");
    conn
}

/// An asset row, decoded into typed fields as the floor's share of the work.
#[allow(dead_code)] // Read only through black_box: decoding is the point.
struct FloorAsset {
    id: String,
    vault_id: String,
    partition: String,
    collection: String,
    channel: String,
    filename: String,
    r2_key: String,
    size: i64,
    mime_type: String,
    width: Option<i64>,
    height: Option<i64>,
    metadata: String,
    tags: String,
    created_at: String,
    updated_at: String,
}

fn floor_asset(row: &rusqlite::Row<'_>) -> rusqlite::Result<FloorAsset> {
    Ok(FloorAsset {
        id: row.get(0)?,
        vault_id: row.get(1)?,
        partition: row.get(2)?,
        collection: row.get(3)?,
        channel: row.get(4)?,
        filename: row.get(5)?,
        r2_key: row.get(6)?,
        size: row.get(7)?,
        mime_type: row.get(8)?,
        width: row.get(9)?,
        height: row.get(10)?,
        metadata: row.get(11)?,
        tags: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

/// The key lookup, inside the floor's read transaction.
fn floor_lookup(conn: &Connection, hash: &str) -> Option<(String, String)> {
    conn.prepare_cached(LOOKUP)
        .expect("prepare lookup")
        .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .expect("lookup")
}

async fn bench_get(
    app: &TestApp,
    floor: &Connection,
    hash: &str,
    ids: &[String],
    iters: Iters,
) -> Line {
    let vault = app.vault.vault_id.as_str();
    let mut rng = Rng(7);
    let picks: Vec<&str> = (0..iters.warmup + iters.runs)
        .map(|_| ids[rng.below(ids.len())].as_str())
        .collect();
    let (handler, direct) = interleave(
        iters,
        async |i| {
            let req = app.call("get").key(app.pk()).asset(picks[i]).build();
            let t = Instant::now();
            let resp = dispatch(&app.deps, "get", req).await;
            let took = t.elapsed();
            assert_eq!(resp.status(), 200, "get {}", picks[i]);
            took
        },
        async |i| {
            let t = Instant::now();
            let tx = floor.unchecked_transaction().expect("begin");
            let key = floor_lookup(&tx, hash);
            let asset = tx
                .prepare_cached(GET)
                .expect("prepare get")
                .query_row([picks[i], vault], floor_asset)
                .optional()
                .expect("get");
            tx.commit().expect("commit");
            let took = t.elapsed();
            assert!(key.is_some() && asset.is_some());
            black_box((key, asset));
            took
        },
    )
    .await;
    Line::time(
        "get, in process, embedded default (vs the same SQL with rusqlite)".into(),
        handler,
        direct,
        2.0,
    )
}

/// The list function's SELECT for `filters` (column, value), with or without a cursor, as
/// `functions/list` builds it; the last parameter is the limit plus one.
fn list_sql(filters: &[&str], cursor: bool) -> String {
    let mut sql = String::from(concat!(
        "SELECT ",
        asset_columns!(),
        " FROM assets WHERE vault_id = ?1"
    ));
    let mut n = 1;
    for column in filters {
        n += 1;
        sql.push_str(&format!(" AND {column} = ?{n}"));
    }
    if cursor {
        sql.push_str(&format!(" AND (created_at, id) < (?{}, ?{})", n + 1, n + 2));
        n += 2;
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT ?{}",
        n + 1
    ));
    sql
}

async fn bench_list(app: &TestApp, floor: &Connection, hash: &str, iters: Iters) -> Line {
    let vault = app.vault.vault_id.as_str();
    let sql = list_sql(&[], false);
    let (handler, direct) = interleave(
        iters,
        async |_| {
            let req = app.call("list").key(app.pk()).query("limit=50").build();
            let t = Instant::now();
            let resp = dispatch(&app.deps, "list", req).await;
            let took = t.elapsed();
            assert_eq!(resp.status(), 200);
            took
        },
        async |_| {
            let t = Instant::now();
            let tx = floor.unchecked_transaction().expect("begin");
            let key = floor_lookup(&tx, hash);
            let rows: Vec<FloorAsset> = tx
                .prepare_cached(&sql)
                .expect("prepare list")
                .query_map(params![vault, PAGE as i64 + 1], floor_asset)
                .expect("list")
                .collect::<Result<_, _>>()
                .expect("rows");
            tx.commit().expect("commit");
            let took = t.elapsed();
            assert!(key.is_some() && rows.len() == PAGE + 1);
            black_box((key, rows));
            took
        },
    )
    .await;
    Line::time(
        "list page of 50, in process (vs the same SQL, rows collected)".into(),
        handler,
        direct,
        1.5,
    )
}

/// The list shapes of the depth rows: (name, query filters).
fn shapes() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("no filter", vec![]),
        ("partition", vec![("partition", PARTITIONS[0])]),
        ("collection", vec![("collection", COLLECTIONS[0])]),
        ("channel", vec![("channel", CHANNELS[0])]),
        (
            "partition + collection + channel",
            vec![
                ("partition", PARTITIONS[0]),
                ("collection", COLLECTIONS[0]),
                ("channel", CHANNELS[0]),
            ],
        ),
    ]
}

/// A page of the list through the handler: its data length and next cursor.
async fn list_page(app: &TestApp, query: &str) -> (usize, Option<String>) {
    let page = app.list(app.pk(), query).await.ok(200);
    let len = page["data"].as_array().map_or(0, Vec::len);
    (len, page["cursor"].as_str().map(str::to_owned))
}

async fn bench_depth(app: &TestApp, iters: Iters) -> Vec<Line> {
    let mut lines = Vec::new();
    for (name, filters) in shapes() {
        let mut first = format!("limit={PAGE}");
        for (k, v) in &filters {
            first.push_str(&format!("&{k}={v}"));
        }
        // Walk with the real cursors: after 40 pages, the cursor names the 41st, at depth 2,000.
        let mut cursor = None;
        for page in 0..DEPTH_PAGES {
            let query = match &cursor {
                None => first.clone(),
                Some(c) => format!("{first}&cursor={c}"),
            };
            let (len, next) = list_page(app, &query).await;
            assert_eq!(len, PAGE, "{name}: page {} is full", page + 1);
            cursor = next;
        }
        let deep = format!("{first}&cursor={}", cursor.expect("a 41st page"));
        assert_eq!(list_page(app, &deep).await.0, PAGE, "{name}: page 41");
        let timed = async |query: &str| {
            let req = app.call("list").key(app.pk()).query(query).build();
            let t = Instant::now();
            let resp = dispatch(&app.deps, "list", req).await;
            let took = t.elapsed();
            assert_eq!(resp.status(), 200);
            took
        };
        let (at_depth, at_first) = interleave(
            iters,
            async |_| timed(&deep).await,
            async |_| timed(&first).await,
        )
        .await;
        lines.push(Line::time(
            format!("list at depth 2,000 of 200,000 (page 41 vs page 1), {name}"),
            at_depth,
            at_first,
            1.5,
        ));
    }
    lines
}

/// `EXPLAIN QUERY PLAN` of each list shape's first-page SELECT, one line each.
fn query_plans(conn: &Connection, vault: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, filters) in shapes() {
        for cursor in [false, true] {
            let columns: Vec<&str> = filters.iter().map(|(k, _)| *k).collect();
            let sql = list_sql(&columns, cursor);
            let mut values: Vec<String> = vec![vault.to_owned()];
            values.extend(filters.iter().map(|(_, v)| v.to_string()));
            if cursor {
                values.push("2025-01-03T00:00:00.000Z".to_owned());
                values.push("asset_01JGQ00000000000000000000".to_owned());
            }
            values.push((PAGE + 1).to_string());
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain");
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    r.get::<_, String>(3)
                })
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("plan rows");
            let label = format!("{name}{}", if cursor { ", with cursor" } else { "" });
            out.push((label, plan.join("; ")));
        }
    }
    out
}

async fn bench_upload(app: &TestApp, mb: usize, iters: Iters) -> (Line, String) {
    let size = mb * 1_000_000;
    let mut rng = Rng(mb as u64);
    let mut bytes = vec![0u8; size];
    for chunk in bytes.chunks_mut(8) {
        let word = rng.next().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    let form = Form::asset(
        "bench",
        "upload",
        "sizes",
        "payload.bin",
        "application/octet-stream",
        &bytes,
    );
    let content_type = form.content_type();
    let body = form.to_bytes();
    drop(form);
    let floor_path = app.objects_dir().join("floor-payload.bin");
    let (handler, direct) = interleave(
        iters,
        async |_| {
            let req = app
                .call("upload")
                .key(app.sk())
                .body(Some(&content_type), body.clone())
                .build();
            let t = Instant::now();
            let resp = dispatch(&app.deps, "upload", req).await;
            let took = t.elapsed();
            assert_eq!(resp.status(), 201, "upload {mb} MB");
            let Body::Text(text) = resp.into_body() else {
                panic!("upload answers JSON text")
            };
            let record: serde_json::Value = serde_json::from_str(&text).expect("record");
            let id = record["id"].as_str().expect("id");
            // Untimed: remove the asset again, so the next upload of the same name is not a 409.
            let gone = app.delete(app.sk(), id).await;
            assert_eq!(gone.status, 204);
            took
        },
        async |_| {
            let t = Instant::now();
            std::fs::write(&floor_path, &bytes).expect("floor write");
            let took = t.elapsed();
            std::fs::remove_file(&floor_path).expect("floor remove");
            took
        },
    )
    .await;
    // Where the handler's time goes: the multipart parse alone, on the same body.
    let mut parses = Vec::new();
    for _ in 0..iters.runs {
        let body = bytes::Bytes::from(body.clone());
        let t = Instant::now();
        let parsed = upload::parse_form(Some(&content_type), body).await;
        parses.push(t.elapsed());
        assert_eq!(parsed.expect("form parses").file.len(), size);
    }
    let parse = median(parses);
    let note = format!(
        "upload {mb} MB: handler {} = multipart parse {} ({:.0}%) + the rest; writing the file alone {}",
        show(handler),
        show(parse),
        100.0 * parse.as_secs_f64() / handler.as_secs_f64(),
        show(direct)
    );
    let ratio = direct.as_secs_f64() / handler.as_secs_f64();
    let line = Line {
        row: format!("upload {mb} MB through the handler, embedded (vs writing the file)"),
        measured: throughput(size, handler),
        floor: throughput(size, direct),
        ratio: format!("{ratio:.2}×"),
        budget: "≥ 0.5× throughput".to_owned(),
        meets: yes_no(ratio >= 0.5),
    };
    (line, note)
}

/// D1 requests per API call, from the D1 test server's counter, with our D1 and R2 clients.
async fn d1_counts() -> Vec<Line> {
    let app = TestApp::on(Backend::Cloudflare).await;
    let d1 = app.d1().expect("the D1 test server");
    let mut lines = Vec::new();
    let mut count = async |row: &str, budget: u64, call: imgbt_tests::Call<'_>, status: u16| {
        d1.reset_requests();
        let reply = call.send().await;
        assert_eq!(reply.status.as_u16(), status, "{row}: {}", reply.snippet());
        lines.push(Line::count(row, d1.requests(), budget));
        reply
    };
    let form = Form::standard();
    let created = count(
        "D1 requests: upload",
        2,
        app.call("upload").key(app.sk()).form(&form),
        201,
    )
    .await
    .json();
    let id = created["id"].as_str().expect("id").to_owned();
    for i in 0..3 {
        app.create(&Form::tiny(
            "marketing",
            "blog",
            "hero-images",
            &format!("t{i}.txt"),
        ))
        .await;
    }
    count(
        "D1 requests: get",
        1,
        app.call("get").key(app.pk()).asset(&id),
        200,
    )
    .await;
    let page = count(
        "D1 requests: list (first page)",
        1,
        app.call("list").key(app.pk()).query("limit=2"),
        200,
    )
    .await
    .json();
    let cursor = page["cursor"].as_str().expect("cursor").to_owned();
    count(
        "D1 requests: list (filters and cursor)",
        1,
        app.call("list").key(app.pk()).query(&format!(
            "limit=2&partition=marketing&collection=blog&channel=hero-images&cursor={cursor}"
        )),
        200,
    )
    .await;
    count(
        "D1 requests: update",
        1,
        app.call("update")
            .key(app.sk())
            .asset(&id)
            .json(&serde_json::json!({"metadata": {"alt": "x"}, "tags": ["a"]})),
        200,
    )
    .await;
    count(
        "D1 requests: delete",
        1,
        app.call("delete").key(app.sk()).asset(&id),
        204,
    )
    .await;
    lines
}
