//! Unit tests of the renderer: printing, undefined values, filters,
//! datetimes, utils and errors.

use super::*;
use serde_json::json;

fn start() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2024-05-01T10:00:00+10:00").expect("start")
}

fn ctx() -> Context {
    let job = json!({
        "job_id": "demo/job",
        "run_id": "0b1d7f2e-1111-4222-8333-444455556666",
        "ts_start": "2024-05-01T10:00:00+10:00",
        "globals": {"a": "Tattarrattat", "n": 3, "f": 2.5, "lava": {"iteration": 1}},
        "state": {"sid": {"x": "7"}},
    });
    Context::for_job(&job, &json!({"realm": "prod"}), &start())
}

/// The worker's default `RENDER_FUEL`.
fn default_fuel() -> u64 {
    crate::config::Config::default()
        .int("RENDER_FUEL")
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_else(|| panic!("RENDER_FUEL has a default"))
}

/// The worker's renderer: every test template must render within the
/// default fuel.
fn fueled() -> Renderer {
    Renderer::with_fuel(Some(default_fuel()))
}

fn r(template: &str) -> String {
    fueled()
        .render_str(template, &ctx())
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn fails(template: &str) -> String {
    match fueled().render_str(template, &ctx()) {
        Ok(out) => panic!("{template} rendered {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn render_with_empty_context() {
    let renderer = Renderer::new();
    assert_eq!(
        renderer
            .render_str("[{{ job }}]", &Context::default())
            .expect("render"),
        "[]"
    );
    assert_eq!(
        renderer
            .render_str("{{ utils.s3bucket('s3://b/k') }}", &Context::new())
            .expect("render"),
        "b"
    );
}

#[test]
fn render_undefined_and_trailing_newline() {
    assert_eq!(r("[{{ nope }}]"), "[]");
    assert_eq!(r("[{{ job.nope }}]"), "[]");
    fails("{{ nope.x }}");
    fails("{{ nope | int }}");
    fails("{{ nope | tojson }}");
    assert_eq!(
        r("[{{ nope | upper }}{{ nope | length }}{{ nope | list }}]"),
        "[0[]]"
    );
    assert_eq!(r("{% if nope %}y{% else %}n{% endif %}"), "n");
    assert_eq!(r("a\n"), "a");
    assert_eq!(r("a\n\n"), "a\n");
    assert_eq!(r("<&>{{ '<b>' }}"), "<&><b>");
}

#[test]
fn render_python_printing() {
    assert_eq!(r("{{ true }} {{ false }} {{ none }}"), "True False None");
    assert_eq!(
        r("{{ globals.n }} {{ globals.f }} {{ 1.0 }} {{ 10 / 4 }}"),
        "3 2.5 1.0 2.5"
    );
    assert_eq!(r("{{ state }}"), "{'sid': {'x': '7'}}");
    assert_eq!(r("{{ [1, 'a', none, true] }}"), "[1, 'a', None, True]");
    assert_eq!(r("{{ {'a': 1} }}"), "{'a': 1}");
    assert_eq!(r("{{ 'x' ~ state }}"), "x{'sid': {'x': '7'}}");
    assert_eq!(r("{{ state | string }}"), "{'sid': {'x': '7'}}");
    assert_eq!(
        r("{{ [state, 1.5] | join(',') }}"),
        "{'sid': {'x': '7'}},1.5"
    );
    assert_eq!(r("{{ ([1] + [2]) | string }}"), "[1, 2]");
    assert_eq!(
        r("{{ start }}|{{ ustart }}"),
        "2024-05-01 10:00:00+10:00|2024-05-01 00:00:00+00:00"
    );
    assert_eq!(r("{{ job.ts_start }}"), "2024-05-01 10:00:00+10:00");
    assert_eq!(r("{{ 'x' ~ start }}"), "x2024-05-01 10:00:00+10:00");
    assert_eq!(r("{{ (1, 'a') }}"), "(1, 'a')");
}

#[test]
fn render_filters_like_jinja2() {
    assert_eq!(
        r("{{ {'b': 1, 'a': [1, 2.0, 'é<']} | tojson }}"),
        r#"{"a": [1, 2.0, "\u00e9\u003c"], "b": 1}"#
    );
    assert_eq!(r("{{ 'Ab' | lower }}{{ 'Ab' | upper }}"), "abAB");
    assert_eq!(
        r(
            "{{ '42' | int }} {{ '4.5' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '0x1A' | int(base=16) }}"
        ),
        "42 4 0 7 3 26"
    );
    assert_eq!(r("{{ 'abc' | reverse }}"), "cba");
    assert_eq!(
        r("{{ nope | default('d') }} {{ none | default('d') }}"),
        "d None"
    );
    assert_eq!(r("{{ 'aXbX' | replace('X', '-') }}"), "a-b-");
    assert_eq!(
        r("{{ ['a', 1] | join('/') }} {{ 'abc' | join('.') }}"),
        "a/1 a.b.c"
    );
    assert_eq!(
        r("{{ state | length }} {{ 'abc' | length }} {{ [1, 2] | length }}"),
        "1 3 2"
    );
    assert_eq!(
        r("{{ 'a,b'.split(',') }} {{ 'ab'.upper() }}"),
        "['a', 'b'] AB"
    );
    assert_eq!(
        r("{% for k, v in state.items() %}{{ k }}={{ v }}{% endfor %}"),
        "sid={'x': '7'}"
    );
}

#[test]
fn render_arithmetic_still_works_on_numbers() {
    assert_eq!(
        r("{{ 1 + 2 }} {{ globals.n - 5 }} {{ -globals.n }} {{ 2.5 - 1 }} {{ 'a' + 'b' }}"),
        "3 -2 -3 1.5 ab"
    );
    assert_eq!(
        r("{{ [1] + [2] }} {{ true + 1 }} {{ 9223372036854775807 + 1 }}"),
        "[1, 2] 2 9223372036854775808"
    );
    assert_eq!(
        r("{% set n = 0 %}{% for i in range(3) %}{% set n = n + i %}{% endfor %}{{ n }}"),
        "0"
    );
    assert_eq!(
        r("{% for i in [1, 2, 3] if i > 1 %}{{ loop.length }}{% endfor %}"),
        "22"
    );
    fails("{{ nope + 1 }}");
    fails("{{ 'a' - 1 }}");
}

#[test]
fn render_percent_and_star_like_python() {
    assert_eq!(
        r("{{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }} {{ -7.5 % 2 }}"),
        "1 2 -2 1.5 0.5"
    );
    assert_eq!(
        r("{{ '%s-%d' % ('a', 3) }} {{ '%s' % state }} {{ '%05.1f' % 3.14159 }}"),
        "a-3 {'sid': {'x': '7'}} 003.1"
    );
    assert_eq!(r("{{ '%(a)s=%(n)d' % globals }}"), "Tattarrattat=3");
    assert_eq!(
        r("{{ 'ab' * 2 }} {{ 2 * 'ab' }} {{ [1] * 2 }} {{ 2 * 3 }} {{ 2.5 * 2 }} {{ 'a' * -1 }}"),
        "abab abab [1, 1] 6 5.0 "
    );
    assert_eq!(
        r(
            "{{ utils.timedelta(days=1) * 2 }} {{ 3 * utils.timedelta(hours=1) }} {{ utils.timedelta(seconds=1) * 0.5 }}"
        ),
        "2 days, 0:00:00 3:00:00 0:00:00.500000"
    );
    assert_eq!(
        r("{{ utils.timedelta(hours=-1) | abs }} {{ -3 | abs }}"),
        "1:00:00 3"
    );
    assert_eq!(
        r(
            "{{ 'hello world foo bar baz' | truncate(9) }}|{{ 'hello world foo' | truncate(9, true, '..') }}|{{ 'abc' | center(7) }}|"
        ),
        "hello...|hello w..|  abc  |"
    );
    fails("{{ 1 % 0 }}");
    fails("{{ 'a' * 'b' }}");
    fails("{{ start * 2 }}");
}

#[test]
fn render_datetime_methods() {
    assert_eq!(r("{{ start.isoformat() }}"), "2024-05-01T10:00:00+10:00");
    assert_eq!(r("{{ ustart.isoformat() }}"), "2024-05-01T00:00:00+00:00");
    assert_eq!(
        r("{{ start.strftime('%Y-%m-%d %H:%M:%S %A %a %B %b %j %y %z %p %I') }}"),
        "2024-05-01 10:00:00 Wednesday Wed May May 122 24 +1000 AM 10"
    );
    assert_eq!(r("{{ ustart.strftime('%Z %f') }}"), "UTC 000000");
    assert_eq!(r("{{ start.timestamp() }}"), "1714521600.0");
    assert_eq!(
        r("{{ start.date() }} {{ start.time() }}"),
        "2024-05-01 10:00:00"
    );
    assert_eq!(
        r("{{ start.astimezone('UTC') }}"),
        "2024-05-01 00:00:00+00:00"
    );
    assert_eq!(
        r(
            "{{ ustart.astimezone('Australia/Sydney') }} {{ ustart.astimezone('Australia/Sydney').strftime('%Z') }}"
        ),
        "2024-05-01 10:00:00+10:00 AEST"
    );
    assert_eq!(
        r("{{ start.replace(day=2, hour=3) }}"),
        "2024-05-02 03:00:00+10:00"
    );
    assert_eq!(
        r("{{ start.replace(microsecond=5).isoformat() }}"),
        "2024-05-01T10:00:00.000005+10:00"
    );
    assert_eq!(
        r(
            "{{ start.year }}-{{ start.month }}-{{ start.day }} {{ start.hour }}:{{ start.minute }}:{{ start.second }}.{{ start.microsecond }}"
        ),
        "2024-5-1 10:0:0.0"
    );
    assert_eq!(
        r(
            "{{ start == ustart }} {{ start < ustart }} {{ ustart > utils.datetime(2024, 1, 1, tzinfo='UTC') }}"
        ),
        "True False True"
    );
    assert_eq!(
        r("{{ start.weekday() }} {{ start.isoweekday() }} {{ start.isoformat(' ', 'minutes') }}"),
        "2 3 2024-05-01 10:00+10:00"
    );
    assert_eq!(
        r("{{ [start] }}"),
        "[datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(seconds=36000)))]"
    );
    assert_eq!(
        r("{{ {'t': ustart} }}"),
        "{'t': datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.timezone.utc)}"
    );
    fails("{{ start.strftime() }}");
    fails("{{ start.replace(month=13) }}");
    fails("{{ start.astimezone('Mars/Olympus') }}");
}

#[test]
fn render_datetime_arithmetic() {
    assert_eq!(
        r("{{ start + utils.timedelta(days=1) }}"),
        "2024-05-02 10:00:00+10:00"
    );
    assert_eq!(
        r("{{ utils.timedelta(hours=1) + start }}"),
        "2024-05-01 11:00:00+10:00"
    );
    assert_eq!(
        r("{{ (ustart - utils.timedelta(days=1)).strftime('%Y-%m-%d') }}"),
        "2024-04-30"
    );
    assert_eq!(
        r("{{ ustart - utils.parsedate.parse('2024-04-30T00:00:00Z') }}"),
        "1 day, 0:00:00"
    );
    assert_eq!(r("{{ start - ustart }}"), "0:00:00");
    assert_eq!(
        r(
            "{{ ustart - utils.parsedate.parse('2000-01-01T00:00:00Z') > utils.timedelta(hours=4) }}"
        ),
        "True"
    );
    assert_eq!(r("{{ -utils.timedelta(hours=1) }}"), "-1 day, 23:00:00");
    assert_eq!(
        r("{{ utils.timedelta(hours=1) - utils.timedelta(hours=3) }}"),
        "-1 day, 22:00:00"
    );
    assert_eq!(
        r("{{ start + utils.dateutil.relativedelta.relativedelta(months=1) }}"),
        "2024-06-01 10:00:00+10:00"
    );
    assert_eq!(
        r("{{ (start - utils.dateutil.relativedelta.relativedelta(months=3, day=31)).date() }}"),
        "2024-02-29"
    );
    assert_eq!(
        r("{{ start.date() - utils.timedelta(days=1) }}"),
        "2024-04-30"
    );
    assert_eq!(
        r("{{ utils.date(2024, 5, 1) - utils.date(2024, 1, 1) }}"),
        "121 days, 0:00:00"
    );
    assert_eq!(
        r("{{ (utils.timedelta(days=1) - utils.timedelta(seconds=1)).total_seconds() }}"),
        "86399.0"
    );
    assert_eq!(
        r("{{ utils.timedelta(days=1).days }} {{ utils.timedelta(minutes=90).seconds }}"),
        "1 5400"
    );
    fails("{{ start - utils.datetime(2024, 1, 1) }}");
    fails("{{ start + 1 }}");
    fails("{{ start + start }}");
}

#[test]
fn render_utils_members() {
    assert_eq!(
        r("{{ utils.datetime(2024, 5, 1) }} {{ utils.datetime(2024, 5, 1, 10, 30, 5) }}"),
        "2024-05-01 00:00:00 2024-05-01 10:30:05"
    );
    assert_eq!(
        r("{{ utils.datetime.strptime('01/05/2024 10:30', '%d/%m/%Y %H:%M') }}"),
        "2024-05-01 10:30:00"
    );
    assert_eq!(
        r("{{ utils.date(2024, 5, 1).strftime('%A') }} {{ utils.date(2024, 5, 1) }}"),
        "Wednesday 2024-05-01"
    );
    assert_eq!(
        r("{{ utils.time(10, 5, 0) }} {{ utils.time(10, 5, 0, 500) }}"),
        "10:05:00 10:05:00.000500"
    );
    assert_eq!(
        r("{{ utils.dateutil.parser.parse('2024-05-01 10:00') }}"),
        "2024-05-01 10:00:00"
    );
    assert_eq!(
        r("{{ utils.dateutil.parser.isoparse('2024-05-01T10:00:00+10:00') }}"),
        "2024-05-01 10:00:00+10:00"
    );
    assert_eq!(
        r("{{ utils.parsedate.isoparse('2024-05-01T00:00:00Z').tzname() }}"),
        "UTC"
    );
    assert_eq!(
        r("{{ utils.dateutil.relativedelta.relativedelta(months=1, days=-2) }}"),
        "relativedelta(months=+1, days=-2)"
    );
    assert_eq!(
        r(
            "{{ utils.s3bucket('s3://b/k/x') }}|{{ utils.s3key('s3://b/k/x') }}|{{ utils.s3bucket('s3:b') }}|{{ utils.s3key('s3:b') }}"
        ),
        "b|k/x|b|"
    );
    assert_eq!(
        r("{{ utils.s3bucket('file:///tmp/x') }}|{{ utils.s3key('file:///tmp/x') }}"),
        "|/tmp/x"
    );
    assert_eq!(
        r("{{ utils.uuid() | string | length }} {{ utils.uuid().hex | length }}"),
        "36 32"
    );
    assert_eq!(
        r(
            "{{ utils.path.basename('a/b.txt') }} {{ utils.path.dirname('a/b.txt') }} {{ utils.path.join('a', 'b') }} {{ utils.path.splitext('a/b.txt')[1] }} {{ utils.path.exists('/') }}"
        ),
        "b.txt a a/b .txt True"
    );
    assert!(r("{{ utils.datetime.now().year }}").parse::<i32>().is_ok());
    fails("{{ utils.datetime(2024, 2, 30) }}");
    fails("{{ utils.timedelta(fortnights=1) }}");
    fails("{{ utils.parsedate.parse('-- set at run-time --') }}");
}

#[test]
fn render_regex_module() {
    assert_eq!(
        r(r"{{ utils.re.search('(\d+)-(\d+)', 'ab 12-34 cd').group(2) }}"),
        "34"
    );
    assert_eq!(r(r"{{ utils.re.search('x', 'abc') }}"), "None");
    assert_eq!(
        r(r"{{ utils.re.match('b', 'abc') }} {{ utils.re.match('a', 'abc').group() }}"),
        "None a"
    );
    assert_eq!(r(r"{{ utils.re.fullmatch('a|ab', 'ab').group(0) }}"), "ab");
    assert_eq!(
        r(r"{{ utils.re.sub('(\w+)@(\w+)', '\\2 at \\g<1>', 'me@home, you@work') }}"),
        "home at me, work at you"
    );
    assert_eq!(r(r"{{ utils.re.sub('a', 'b', 'aaa', 2) }}"), "bba");
    assert_eq!(
        r(r"{{ utils.re.findall('\d', 'a1b2') }} {{ utils.re.findall('(\w)(\d)', 'a1b2') }}"),
        "['1', '2'] [('a', '1'), ('b', '2')]"
    );
    assert_eq!(
        r(r"{{ utils.re.split('[,;]', 'a,b;c') }} {{ utils.re.split('(,)', 'a,b') }}"),
        "['a', 'b', 'c'] ['a', ',', 'b']"
    );
    assert_eq!(
        r(r"{{ utils.re.search('(?P<y>\d{4})', 'in 2024').groupdict() }}"),
        "{'y': '2024'}"
    );
    assert_eq!(
        r(r"{{ utils.re.search('B', 'abc', utils.re.I).span() }}"),
        "(1, 2)"
    );
    assert_eq!(
        r(r"{{ utils.re.compile('\d+').findall('1 22 333') }}"),
        "['1', '22', '333']"
    );
    assert_eq!(
        r(r"{{ utils.re.search('é(.)', 'café!') }}"),
        "<re.Match object; span=(3, 5), match='é!'>"
    );
    fails(r"{{ utils.re.search('(?<=a)b', 'ab') }}");
}

#[test]
fn render_regex_objects_print_as_their_repr_inside_lists() {
    // A list prints each item's repr; for match and pattern objects that is
    // the same text as their str().
    assert_eq!(
        r(r"{{ [utils.re.search('b', 'abc'), utils.re.compile('\d')] }}"),
        r"[<re.Match object; span=(1, 2), match='b'>, re.compile('\\d')]"
    );
}

#[test]
fn render_value_renders_every_leaf_and_key() {
    let renderer = Renderer::new();
    let ctx = ctx().var("p", &json!("C:\\temp"));
    let v = json!({"{{ job.job_id }}": ["{{ globals.n }}", 1, true, null, {"k": "{{ p }}", "q": "{{ \"dq\" }}"}]});
    let out = renderer.render_value(&v, &ctx).expect("render");
    assert_eq!(
        out,
        json!({"demo/job": ["3", 1, true, null, {"k": "C:\\temp", "q": "dq"}]})
    );
}

#[test]
fn render_json_text_like_the_original() {
    let renderer = Renderer::new();
    let v = json!({"g1": "{{ globals.n }}", "all": "{{ globals }}", "n": 5});
    let out = renderer.render_json_text(&v, &ctx()).expect("render");
    assert_eq!(
        out,
        json!({"g1": "3", "all": "{'a': 'Tattarrattat', 'n': 3, 'f': 2.5, 'lava': {'iteration': 1}}", "n": 5})
    );
    // A rendered backslash is JSON-unescaped, as in the original.
    let tab = renderer
        .render_json_text(
            &json!({"p": "{{ p }}"}),
            &ctx().var("p", &json!("C:\\temp")),
        )
        .expect("render");
    assert_eq!(tab, json!({"p": "C:\temp"}));
    // A rendered double quote breaks the JSON.
    let err = renderer
        .render_json_text(&json!({"p": "{{ 'say \"hi\"' }}"}), &ctx())
        .expect_err("bad json");
    assert!(matches!(err, RenderError::Json { .. }), "{err}");
}

#[test]
fn render_errors_carry_template_and_message() {
    let err = Renderer::new()
        .render_str("{{ job.job_id", &ctx())
        .expect_err("syntax error");
    match err {
        RenderError::Template { template, message } => {
            assert_eq!(template, "{{ job.job_id");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn render_file_with_include_and_escape() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("part.sql"), "SELECT '{{ job.job_id }}'").expect("write");
    std::fs::write(dir.path().join("main.sql"), "{% include 'part.sql' %};\n").expect("write");
    std::fs::write(
        dir.path().join("page.html"),
        "<p>{{ '<b>' }}{{ state }}</p>",
    )
    .expect("write");
    let renderer = Renderer::new();
    assert_eq!(
        renderer
            .render_file(&dir.path().join("main.sql"), &ctx())
            .expect("sql"),
        "SELECT 'demo/job';"
    );
    assert_eq!(
        renderer
            .render_file(&dir.path().join("page.html"), &ctx())
            .expect("html"),
        "<p>&lt;b&gt;{&#x27;sid&#x27;: {&#x27;x&#x27;: &#x27;7&#x27;}}</p>"
    );
}

#[test]
fn render_is_fast_and_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Renderer>();
    assert_send_sync::<Context>();
    let renderer = Renderer::new();
    let ctx = ctx();
    let t0 = std::time::Instant::now();
    for _ in 0..1000 {
        let out = renderer
            .render_str(
                "{{ job.job_id }}@{{ realm.realm }} {{ ustart.isoformat() }}",
                &ctx,
            )
            .expect("render");
        assert_eq!(out, "demo/job@prod 2024-05-01T00:00:00+00:00");
    }
    let per = t0.elapsed() / 1000;
    assert!(
        per < std::time::Duration::from_millis(1),
        "{per:?} per render"
    );
}

/// Templates that would spin for hours without a fuel limit.
const RUNAWAYS: [&str; 3] = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
];

/// Renders on its own thread, giving up after a generous bound (a runaway
/// without fuel never ends: the test must fail, not hang).
fn render_bounded(renderer: Renderer, template: &'static str) -> Result<String, RenderError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(renderer.render_str(template, &ctx()));
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{template} still renders after 60 s"))
}

#[test]
fn runaway_templates_run_out_of_fuel() {
    for template in RUNAWAYS {
        let err = render_bounded(fueled(), template).expect_err(template);
        assert!(err.is_out_of_fuel(), "{template}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("ran out of fuel in job demo/job")
                && text.contains(&format!("RENDER_FUEL is {}", default_fuel())),
            "{text}"
        );
    }
    // Without a job in the context the message names none.
    let err = Renderer::with_fuel(Some(1000))
        .render_str(RUNAWAYS[0], &Context::new())
        .expect_err("runaway");
    assert!(
        err.to_string()
            .starts_with("Jinja render ran out of fuel (RENDER_FUEL is 1000)"),
        "{err}"
    );
}

#[test]
fn fuel_pays_for_repeated_strings_before_they_are_built() {
    let small = Renderer::with_fuel(Some(100_000));
    let err = small
        .render_str("{{ ('x' * 90000000) | length }}", &ctx())
        .expect_err("90 MB");
    assert!(err.is_out_of_fuel(), "{err}");
    // Not folded at compile time (minijinja's folded repeat is lazy).
    let err = small
        .render_str("{% set n = 40000000 %}{{ ([1, 2] * n) | length }}", &ctx())
        .expect_err("80 million items");
    assert!(err.is_out_of_fuel(), "{err}");
    assert_eq!(
        small
            .render_str("{{ ('x' * 1000) | length }}", &ctx())
            .expect("small"),
        "1000"
    );
}

#[test]
fn other_errors_keep_their_messages_under_fuel() {
    let err = fueled()
        .render_str("{{ nope.x }}", &ctx())
        .expect_err("undefined");
    assert!(!err.is_out_of_fuel());
    assert!(
        err.to_string().starts_with("Jinja render failed: "),
        "{err}"
    );
    // minijinja bounds range() itself, fuel or not.
    for renderer in [Renderer::new(), fueled()] {
        let err = renderer
            .render_str("{% for i in range(100000000) %}{% endfor %}", &ctx())
            .expect_err("huge range");
        assert!(
            err.to_string().contains("range has too many elements"),
            "{err}"
        );
    }
    assert_eq!(r("{{ range(100000) | length }}"), "100000");
}

#[test]
fn ordinary_templates_render_within_the_default_fuel() {
    let renderer = fueled();
    let ctx = ctx();
    for (template, expected) in [
        ("{{ job.job_id }}@{{ realm.realm }}", "demo/job@prod"),
        (
            "{% for i in range(1000) %}{% set x = i * 2 %}{% endfor %}{{ globals.a | lower }}",
            "tattarrattat",
        ),
        (
            "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}",
            "54321",
        ),
        (
            "{{ (ustart - utils.timedelta(days=1)).isoformat() }}",
            "2024-04-30T00:00:00+00:00",
        ),
    ] {
        assert_eq!(
            renderer.render_str(template, &ctx).as_deref(),
            Ok(expected),
            "{template}"
        );
    }
    assert_eq!(renderer.fuel(), Some(default_fuel()));
    assert_eq!(Renderer::new().fuel(), None);
}

#[tokio::test]
async fn async_renders_leave_the_runtime_thread_free() {
    // A current-thread runtime: had the render run on its one thread, the
    // ticker could not tick until it ended.
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    tokio::task::yield_now().await;
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    let renderer = Renderer::with_fuel(Some(default_fuel() * 4));
    let err = renderer
        .render_str_async(RUNAWAYS[0], &ctx())
        .await
        .expect_err("runaway");
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    ticker.abort();
    assert!(err.is_out_of_fuel(), "{err}");
    assert!(during >= 3, "the runtime thread was held: {during} ticks");
    assert_eq!(
        renderer
            .render_json_text_async(&json!({"j": "{{ job.job_id }}"}), &ctx())
            .await,
        Ok(json!({"j": "demo/job"}))
    );
    assert_eq!(
        renderer
            .render_value_async(&json!(["{{ 1 + 1 }}"]), &ctx())
            .await,
        Ok(json!(["2"]))
    );
}
