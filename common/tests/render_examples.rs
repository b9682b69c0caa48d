//! The Jinja examples documented for the original's jobs, realms and
//! actions, and those of sample job definitions, each rendered with its
//! expected output: these must keep working for a realm to move from the
//! Python original unchanged. Expected outputs were checked
//! against Python Jinja2 3.1 with the original's variables.
//!
//! They cover realm and job actions (`on_fail`/`on_success` messages, state
//! values, `lava-state get`), connector variables (`CONN_APP_NAME`),
//! s3trigger globals and parameters, JSON-text against leaf rendering,
//! `cmd`/`exe`/`pkg`/`sql`/`sqlc`/`db_from_s3` parameters (with
//! `{% include %}`), `enabled` conditions, `event_log` forms, the ways to read
//! a state item, and the augmented job's timestamps.

mod render_examples {
    use chrono::DateTime;
    use lava_common::render::{Context, RenderError, Renderer};
    use serde_json::{Value, json};

    /// `start` of every example: 2024-05-01 10:00 at +10:00 (00:00 UTC).
    fn start() -> DateTime<chrono::FixedOffset> {
        DateTime::parse_from_rfc3339("2024-05-01T10:00:00+10:00").expect("start")
    }

    fn realm() -> Value {
        json!({
            "realm": "prod",
            "s3_payloads": "s3://lava-prod/payloads",
            "s3_temp": "s3://lava-prod/tmp",
            "s3_key": "alias/lava",
        })
    }

    /// The augmented job of the examples.
    fn job(globals: Value, state: Value) -> Value {
        json!({
            "job_id": "etl/load-sales",
            "run_id": "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "realm": "prod",
            "type": "cmd",
            "worker": "core",
            "ts_dispatch": "2024-05-01T09:59:58+10:00",
            "ts_start": "2024-05-01T10:00:00+10:00",
            "ts_ustart": "2024-05-01T00:00:00+00:00",
            "parameters": {},
            "globals": globals,
            "state": state,
        })
    }

    fn base(globals: Value, state: Value) -> Context {
        Context::for_job(&job(globals, state), &realm(), &start())
    }

    fn lava_globals(extra: Value) -> Value {
        let mut g = json!({"lava": {
            "master_job_id": "etl/load-sales",
            "master_start": "2024-05-01T10:00:00+10:00",
            "master_ustart": "2024-05-01T00:00:00+00:00",
            "parent_job_id": "etl/load-sales",
            "parent_start": "2024-05-01T10:00:00+10:00",
            "parent_ustart": "2024-05-01T00:00:00+00:00",
            "iteration": 2,
        }});
        if let (Some(g), Value::Object(extra)) = (g.as_object_mut(), extra) {
            g.extend(extra);
        }
        g
    }

    fn render(ctx: &Context, template: &str) -> String {
        Renderer::new()
            .render_str(template, ctx)
            .unwrap_or_else(|e| panic!("{template}: {e}"))
    }

    fn result_failed() -> Value {
        json!({"exit_status": 1, "error": "Failed with exit status 1"})
    }

    // The realm's on_fail sns message.
    #[test]
    fn render_realm_on_fail_message() {
        let ctx = base(json!({}), json!({})).result(&result_failed());
        assert_eq!(
            render(
                &ctx,
                "Job {{job.job_id}}@{{realm.realm}} ({{job.run_id}}) failed: {{result.error}}"
            ),
            "Job etl/load-sales@prod (5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b) failed: Failed with exit status 1"
        );
    }

    // A state action's default publisher and its value.
    #[test]
    fn render_state_action_values() {
        let ctx = base(json!({}), json!({})).result(&json!({}));
        assert_eq!(render(&ctx, "{{ job.job_id }}"), "etl/load-sales");
        assert_eq!(
            render(&ctx, "{{ ustart.isoformat() }}"),
            "2024-05-01T00:00:00+00:00"
        );
    }

    // `lava-state get` with the value as `state` and `s`.
    #[test]
    fn render_lava_state_get_templates() {
        let value = json!({"rows": 45, "k": "v", "ok": true, "none": null});
        let ctx = Context::new().var("state", &value).var("s", &value);
        assert_eq!(
            render(&ctx, "{{ state }}"),
            "{'rows': 45, 'k': 'v', 'ok': True, 'none': None}"
        );
        assert_eq!(
            render(&ctx, "{{ state | tojson }}"),
            r#"{"k": "v", "none": null, "ok": true, "rows": 45}"#
        );
        assert_eq!(render(&ctx, "{{ s.rows }}"), "45");
        let map = Context::new().var("state", &json!({"k": "v"}));
        assert_eq!(render(&map, "{{ state }}"), "{'k': 'v'}");
        let text = Context::new().var("state", &json!("plain text"));
        assert_eq!(render(&text, "{{ state }}"), "plain text");
    }

    // on_success actions.
    #[test]
    fn render_on_success_actions() {
        let renderer = Renderer::new();
        let ctx = base(lava_globals(json!({"next_step": "report"})), json!({}))
            .result(&json!({"exit_status": 0}));
        let actions = json!([
            {"action": "log", "message": "{{ job.job_id }} done in iteration {{ globals.lava.iteration }}"},
            {"action": "dispatch", "job_id": "etl/{{ globals.next_step }}", "parameters": {"day": "{{ ustart.strftime('%Y-%m-%d') }}"}, "delay": "1m"},
            {"action": "event", "detail": {"job": "{{ job.job_id }}", "outcome": "ok"}},
            {"action": "state", "state_id": "etl/last-ok", "value": {"run": "{{ job.run_id }}"}, "ttl": "30d"}
        ]);
        let out = renderer.render_value(&actions, &ctx).expect("render");
        assert_eq!(
            out,
            json!([
                {"action": "log", "message": "etl/load-sales done in iteration 2"},
                {"action": "dispatch", "job_id": "etl/report", "parameters": {"day": "2024-05-01"}, "delay": "1m"},
                {"action": "event", "detail": {"job": "etl/load-sales", "outcome": "ok"}},
                {"action": "state", "state_id": "etl/last-ok", "value": {"run": "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}, "ttl": "30d"}
            ])
        );
        // The dispatch action's parameters as the original renders them:
        // JSON text, rendered once.
        let params = renderer
            .render_json_text(&json!({"day": "{{ ustart.strftime('%Y-%m-%d') }}"}), &ctx)
            .expect("json text");
        assert_eq!(params, json!({"day": "2024-05-01"}));
    }

    // on_fail actions; HTML is not escaped.
    #[test]
    fn render_on_fail_actions() {
        let renderer = Renderer::new();
        let ctx = base(lava_globals(json!({})), json!({})).result(
            &json!({"exit_status": 2, "error": "Failed with exit status 2 <stderr: a & b>"}),
        );
        let actions = json!([
            {"action": "log", "message": "attempt {{ globals.lava.iteration }} failed: {{ result.error }}"},
            {"action": "sqs", "queue": "ops-alerts", "message": {"job": "{{ job.job_id }}", "error": "{{ result.error }}"}},
            {"action": "email", "to": ["ops@example.com"], "subject": "{{ job.job_id }} failed", "message": "<html><p>{{ result.error }}</p></html>"},
            {"action": "slack", "slack_conn": "ops-slack", "subject": "{{ job.job_id }}", "message": "{{ result.error }}", "style": "attachment", "colour": "#ff0000"}
        ]);
        let out = renderer.render_value(&actions, &ctx).expect("render");
        let err = "Failed with exit status 2 <stderr: a & b>";
        assert_eq!(
            out,
            json!([
                {"action": "log", "message": format!("attempt 2 failed: {err}")},
                {"action": "sqs", "queue": "ops-alerts", "message": {"job": "etl/load-sales", "error": err}},
                {"action": "email", "to": ["ops@example.com"], "subject": "etl/load-sales failed", "message": format!("<html><p>{err}</p></html>")},
                {"action": "slack", "slack_conn": "ops-slack", "subject": "etl/load-sales", "message": err, "style": "attachment", "colour": "#ff0000"}
            ])
        );
    }

    // CONN_APP_NAME of a connector.
    #[test]
    fn render_conn_app_name() {
        let ctx = Context::new()
            .var("realm", &json!("prod"))
            .var("job_id", &json!("etl/load-sales"))
            .var("conn_id", &json!("warehouse"));
        assert_eq!(
            render(&ctx, "lv-{{ realm }}-{{ job_id }}"),
            "lv-prod-etl/load-sales"
        );
    }

    fn s3trigger_ctx(bucket: &str) -> Context {
        let info = json!({
            "bucket": bucket,
            "key": "HappyFace.jpg",
            "size": 1024,
            "event_time": "2022-01-30T16:18:17.000123+00:00",
            "source_ip": "10.200.240.5",
            "event_type": "ObjectCreated:Put",
            "aws_region": "ap-southeast-2",
        });
        Context::new()
            .var("bucket", &json!(bucket))
            .var("key", &json!("HappyFace.jpg"))
            .var("event", &json!({"eventName": "ObjectCreated:Put"}))
            .var_with_datetimes("info", &info, &["event_time"])
    }

    // s3trigger globals and parameters: JSON-text rendering (the original)
    // and leaf rendering (recommended) give the same result.
    #[test]
    fn render_s3trigger_globals_and_parameters() {
        let renderer = Renderer::new();
        let ctx = s3trigger_ctx("my-bucket");
        let globals = json!({"bucket": "{{bucket}}", "key": "{{key}}", "account-id": "{{bucket.split(':')[4]}}"});
        let parameters = json!({"env": {
            "BUCKET": "{{bucket}}",
            "KEY": "{{key}}",
            "IP": "{{info.source_ip}}",
            "EVENT_TIME": "{{info.event_time.isoformat()}}"
        }});
        let want_globals = json!({"bucket": "my-bucket", "key": "HappyFace.jpg", "account-id": ""});
        let want_parameters = json!({"env": {
            "BUCKET": "my-bucket",
            "KEY": "HappyFace.jpg",
            "IP": "10.200.240.5",
            "EVENT_TIME": "2022-01-30T16:18:17.000123+00:00"
        }});
        for rendered in [
            renderer.render_json_text(&globals, &ctx),
            renderer.render_value(&globals, &ctx),
        ] {
            assert_eq!(rendered.expect("globals"), want_globals);
        }
        for rendered in [
            renderer.render_json_text(&parameters, &ctx),
            renderer.render_value(&parameters, &ctx),
        ] {
            assert_eq!(rendered.expect("parameters"), want_parameters);
        }
        let arn = s3trigger_ctx("arn:aws:s3:ap-southeast-2:123456789012:accesspoint");
        assert_eq!(render(&arn, "{{bucket.split(':')[4]}}"), "123456789012");
        let spec = json!({"globals": {"bucket": "{{bucket}}", "key": "{{key}}"},
            "parameters": {"env": {"EVENT_TIME": "{{info.event_time.isoformat()}}"}}});
        assert_eq!(
            renderer.render_json_text(&spec, &ctx).expect("spec"),
            json!({"globals": {"bucket": "my-bucket", "key": "HappyFace.jpg"},
                "parameters": {"env": {"EVENT_TIME": "2022-01-30T16:18:17.000123+00:00"}}})
        );
    }

    // Where JSON-text and leaf rendering differ: a rendered quote breaks
    // the JSON text, a rendered backslash is JSON-unescaped.
    #[test]
    fn render_json_text_gotchas() {
        let renderer = Renderer::new();
        let ctx = Context::new().var("p", &json!("C:\\temp"));
        let value = json!({"path": "{{ p }}"});
        assert_eq!(
            renderer.render_json_text(&value, &ctx).expect("json text"),
            json!({"path": "C:\temp"})
        );
        assert_eq!(
            renderer.render_value(&value, &ctx).expect("leaf"),
            json!({"path": "C:\\temp"})
        );
        let quoted = json!({"x": "{{ \"double\" }}"});
        assert!(renderer.render_json_text(&quoted, &ctx).is_err());
        assert_eq!(
            renderer.render_value(&quoted, &ctx).expect("leaf"),
            json!({"x": "double"})
        );
    }

    /// The cmd handler splits into words before rendering each word.
    fn render_words(ctx: &Context, words: &[&str]) -> Result<Vec<String>, RenderError> {
        let renderer = Renderer::new();
        words.iter().map(|w| renderer.render_str(w, ctx)).collect()
    }

    // cmd payload with vars; a spaced expression split into words fails.
    #[test]
    fn render_cmd_words() {
        let ctx = base(json!({}), json!({})).vars(&json!({"fs": "/data"}));
        assert_eq!(
            render_words(&ctx, &["df", "-h", "{{vars.fs}}"]).expect("words"),
            ["df", "-h", "/data"]
        );
        assert_eq!(
            render_words(&ctx, &["echo", "{{realm.realm}}"]).expect("words"),
            ["echo", "prod"]
        );
        let err = render_words(&ctx, &["echo", "{{", "realm.realm", "}}"]).expect_err("split");
        assert!(matches!(err, RenderError::Template { ref template, .. } if template == "{{"));
        assert_eq!(
            render_words(&ctx, &["echo", "{{ realm.realm }}"]).expect("quoted"),
            ["echo", "prod"]
        );
    }

    // exe/pkg command.
    #[test]
    fn render_command_parameter() {
        let ctx = base(json!({}), json!({}));
        assert_eq!(
            render(&ctx, "bin/run.sh --day {{ustart.strftime('%Y-%m-%d')}}"),
            "bin/run.sh --day 2024-05-01"
        );
    }

    // sql statements are split before rendering, so a block spanning
    // statements does not compile.
    #[test]
    fn render_sql_statements() {
        let ctx = base(json!({}), json!({}));
        assert_eq!(
            render(&ctx, "DELETE FROM stage.t WHERE d = '{{ustart.date()}}';"),
            "DELETE FROM stage.t WHERE d = '2024-05-01';"
        );
        assert_eq!(
            render(&ctx, "SELECT COUNT(*) FROM stage.t"),
            "SELECT COUNT(*) FROM stage.t"
        );
        let renderer = Renderer::new();
        assert!(
            renderer
                .render_str("{% for t in ['a', 'b'] %}DELETE FROM {{ t }}", &ctx)
                .is_err()
        );
        assert_eq!(
            render(
                &ctx,
                "{% for t in ['a', 'b'] %}DELETE FROM {{ t }};{% endfor %}"
            ),
            "DELETE FROM a;DELETE FROM b;"
        );
    }

    // sqlc files include sibling payload files; HTML autoescape only for
    // .html/.htm/.xml.
    #[test]
    fn render_sqlc_include() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("common.sql"),
            "SET search_path = {{ globals.schema }};",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("main.sql"),
            "{% include 'common.sql' %}\nSELECT '{{ ustart.date() }}' AS d, '<x>' AS tag;\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("report.html"),
            "<td>{{ globals.schema }}</td>",
        )
        .expect("write");
        let ctx = base(json!({"schema": "stage<1>"}), json!({}));
        let renderer = Renderer::new();
        assert_eq!(
            renderer
                .render_file(&dir.path().join("main.sql"), &ctx)
                .expect("sql"),
            "SET search_path = stage<1>;\nSELECT '2024-05-01' AS d, '<x>' AS tag;"
        );
        assert_eq!(
            renderer
                .render_file(&dir.path().join("report.html"), &ctx)
                .expect("html"),
            "<td>stage&lt;1&gt;</td>"
        );
    }

    // db_from_s3 bucket/key from globals.
    #[test]
    fn render_db_from_s3_parameters() {
        let ctx = base(
            json!({"bucket": "data-in", "key": "sales/daily/x.csv"}),
            json!({}),
        );
        let renderer = Renderer::new();
        let params = json!({"bucket": "{{globals.bucket}}", "key": "{{globals.key}}", "schema": "club", "table": "/([a-z]+)$"});
        assert_eq!(
            renderer.render_value(&params, &ctx).expect("params"),
            json!({"bucket": "data-in", "key": "sales/daily/x.csv", "schema": "club", "table": "/([a-z]+)$"})
        );
    }

    // cmd payload and env of a job item.
    #[test]
    fn render_tables_cmd_example() {
        let ctx = base(json!({}), json!({}));
        assert_eq!(
            render(&ctx, "aws s3 ls {{realm.s3_payloads}}/"),
            "aws s3 ls s3://lava-prod/payloads/"
        );
        assert_eq!(
            render(&ctx, "{{job.run_id}}"),
            "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
        );
    }

    // A palindromic global enables the job.
    #[test]
    fn render_enabled_palindrome() {
        let t = "{% set word = globals.a | lower %}{{ word == word | reverse }}";
        assert_eq!(
            render(&base(json!({"a": "Tattarrattat"}), json!({})), t),
            "True"
        );
        assert_eq!(render(&base(json!({"a": "Lava"}), json!({})), t), "False");
    }

    // An odd state value enables the job.
    #[test]
    fn render_enabled_odd_state() {
        let t = "{% set val = state['sid'].x | int %}{{ val % 2 == 1 }}";
        assert_eq!(
            render(&base(json!({}), json!({"sid": {"x": "7"}})), t),
            "True"
        );
        assert_eq!(
            render(&base(json!({}), json!({"sid": {"x": 8}})), t),
            "False"
        );
        // Before the state item exists the default text has no `.x`: as in
        // Jinja2, `int` of that undefined value is an error.
        let err = Renderer::new()
            .render_str(t, &base(json!({}), json!({"sid": "-- set at run-time --"})))
            .expect_err("undefined");
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    // Datetime arithmetic in `enabled` and `event_log` (JSON-text
    // rendering).
    #[test]
    fn render_enabled_time_since_last_run() {
        let enabled = "{% set ts=utils.parsedate.parse(state['sid']) %}{{ ustart-ts > utils.timedelta(hours=4) }}";
        let event_log =
            "Time since last run: {% set ts=utils.parsedate.parse(state['sid']) %}{{ ustart-ts }}";
        let first = base(json!({}), json!({"sid": "2000-01-01T00:00:00Z"}));
        assert_eq!(render(&first, enabled), "True");
        let renderer = Renderer::new();
        assert_eq!(
            renderer
                .render_json_text(&json!(event_log), &first)
                .expect("event_log"),
            json!("Time since last run: 8887 days, 0:00:00")
        );
        let recent = base(json!({}), json!({"sid": "2024-04-30T22:30:00+00:00"}));
        assert_eq!(render(&recent, enabled), "False");
        assert_eq!(render(&recent, event_log), "Time since last run: 1:30:00");
        let local = base(json!({}), json!({"sid": "2024-05-01T04:00:00+10:00"}));
        assert_eq!(render(&local, enabled), "True");
        assert_eq!(render(&local, event_log), "Time since last run: 6:00:00");
    }

    // event_log forms (JSON-text).
    #[test]
    fn render_event_log_forms() {
        let renderer = Renderer::new();
        let ctx = base(json!({"g1": "one", "g2": 2}), json!({}));
        let cases = [
            (
                json!("The value of global g1 is '{{ globals.g1 }}'"),
                json!("The value of global g1 is 'one'"),
            ),
            (
                json!({"g1": "{{ globals.g1 }}", "g2": "{{ globals.g2 }}"}),
                json!({"g1": "one", "g2": "2"}),
            ),
            (json!("{{ globals }}'"), json!("{'g1': 'one', 'g2': 2}'")),
        ];
        for (event_log, want) in cases {
            assert_eq!(
                renderer
                    .render_json_text(&event_log, &ctx)
                    .expect("event_log"),
                want
            );
        }
        // With the lava globals the worker adds, datetimes print as Python's repr.
        let ctx = base(lava_globals(json!({"g1": "one"})), json!({}));
        assert_eq!(
            render(&ctx, "{{ globals.lava.master_start }}"),
            "2024-05-01 10:00:00+10:00"
        );
        assert_eq!(
            render(&ctx, "{{ globals.lava.master_ustart }}"),
            "2024-05-01 00:00:00+00:00"
        );
        assert!(render(&ctx, "{{ globals }}").starts_with(
            "{'lava': {'master_job_id': 'etl/load-sales', 'master_start': datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(seconds=36000))), "
        ));
    }

    // Four ways to read a state item.
    #[test]
    fn render_state_access_forms() {
        let ctx = base(json!({}), json!({"my_state_id": {"lines": "45"}}));
        for t in [
            "{{ job.state.my_state_id }}",
            "{{ job.state['my_state_id'] }}",
            "{{ state.my_state_id }}",
            "{{ state['my_state_id'] }}",
        ] {
            assert_eq!(render(&ctx, t), "{'lines': '45'}", "{t}");
        }
    }

    // Line counter and reporter jobs.
    #[test]
    fn render_line_counter_jobs() {
        let ctx = base(
            json!({"bucket": "data-in", "key": "x.csv"}),
            json!({"sid": {"lines": "45"}}),
        );
        assert_eq!(
            render(
                &ctx,
                "lava-state put sid -p lines=$(aws s3 cp 's3://{{globals.bucket}}/{{globals.key}}' - | wc -l)"
            ),
            "lava-state put sid -p lines=$(aws s3 cp 's3://data-in/x.csv' - | wc -l)"
        );
        assert_eq!(
            render(&ctx, "echo The file contained {{state.sid}} lines"),
            "echo The file contained {'lines': '45'} lines"
        );
    }

    // The augmented job's timestamps are datetimes, as the original keeps
    // them.
    #[test]
    fn render_augmented_job_timestamps() {
        let ctx = base(lava_globals(json!({})), json!({}));
        assert_eq!(
            render(&ctx, "{{ job.ts_start }}"),
            "2024-05-01 10:00:00+10:00"
        );
        assert_eq!(
            render(&ctx, "{{ job.ts_ustart }}"),
            "2024-05-01 00:00:00+00:00"
        );
        assert_eq!(
            render(
                &ctx,
                "{{ (job.ts_start - job.ts_dispatch).total_seconds() }}"
            ),
            "2.0"
        );
        assert_eq!(
            render(&ctx, "{{ job.globals.lava.parent_start.isoformat() }}"),
            "2024-05-01T10:00:00+10:00"
        );
        assert_eq!(render(&ctx, "{{ start == job.ts_start }}"), "True");
    }
}
