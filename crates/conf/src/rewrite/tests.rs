use super::*;
use crate::{parse_str, MapContext, MemFs};

fn setup(rules: &str) -> (Config, Rules) {
    let text = format!("primary_hostname = myhost.test.ex\nbegin rewrite\n{rules}\n");
    let cfg = parse_str(&text, "conf", &[], &MemFs::new()).unwrap();
    let r = Rules::global(&cfg.rewrite);
    (cfg, r)
}

fn env<'a>(cfg: &'a Config, ctx: &'a MapContext) -> Env<'a> {
    Env {
        cfg,
        ctx,
        qualify_sender: "test.ex",
        qualify_recipient: "test.ex",
        charset: "ISO-8859-1",
    }
}

#[test]
fn brw_output_0249() {
    let (cfg, r) = setup("*@a.domain  $1@b.domain\n*@c.domain  $local_part@d.domain\na@b y@z T");
    let ctx = MapContext::new();
    let e = env(&cfg, &ctx);
    let mut notes = Vec::new();
    let out = e.test(&r, "User@a.domain", &mut notes);
    assert_eq!(
        out,
        "  sender: User@b.domain\n    from: User@b.domain\n      to: User@b.domain\n      \
         cc: User@b.domain\n     bcc: User@b.domain\nreply-to: User@b.domain\nenv-from: \
         User@b.domain\n  env-to: User@b.domain\n"
    );
    assert!(notes.contains(&Note::Rewritten(
        "\"User@a.domain\" from env-to rewritten as \"User@b.domain\" by rule 1".into()
    )));
}

#[test]
fn flags_select_fields_and_q_stops() {
    let (cfg, r) = setup("*@x.y  $1@z.z  F\n*@x.y  other@w.w  q\n*@w.w  never@v.v");
    let ctx = MapContext::new();
    let e = env(&cfg, &ctx);
    let mut n = Vec::new();
    assert_eq!(
        e.rewrite_address(&r, "a@x.y", false, false, &mut n),
        "a@z.z"
    );
    assert_eq!(
        e.rewrite_address(&r, "a@x.y", true, false, &mut n),
        "other@w.w"
    );
    assert_eq!(e.rewrite_address(&r, "a", true, true, &mut n), "a@test.ex");
}

#[test]
fn header_keeps_phrase_and_qualifies() {
    let (cfg, r) = setup("*@old.ex  $1@new.ex  h");
    let ctx = MapContext::new();
    let e = env(&cfg, &ctx);
    let mut n = Vec::new();
    let h = e
        .rewrite_header(
            &r,
            "To: Some One <a@old.ex>, b, c@else.ex\n",
            true,
            true,
            &mut n,
        )
        .unwrap();
    assert_eq!(h, "To: Some One <a@new.ex>, b@test.ex, c@else.ex\n");
    assert_eq!(
        e.rewrite_header(&r, "Subject: a@old.ex\n", true, true, &mut n),
        None
    );
    // Unqualified and not allowed to qualify: left alone.
    assert_eq!(e.rewrite_header(&r, "To: b\n", true, false, &mut n), None);
}

#[test]
fn whole_flag_and_wildcards() {
    let (cfg, r) = setup("*queen@*.fict.example  \"$2 <$1@x.y>\"  wh");
    let ctx = MapContext::new();
    let e = env(&cfg, &ctx);
    let mut n = Vec::new();
    let h = e
        .rewrite_header(
            &r,
            "From: Q (c) <hearts-queen@wonder.fict.example>\n",
            true,
            true,
            &mut n,
        )
        .unwrap();
    assert_eq!(h, "From: wonder <hearts-@x.y>\n");
}

#[test]
fn smtp_rule_and_regex() {
    let (cfg, r) = setup("\\N^<?(.*)!(.*)@b\\.c>?$\\N  $2@$1  S\n\\N^(?i)X(.*)@y$\\N  z$1@w  R");
    let ctx = MapContext::new();
    let e = env(&cfg, &ctx);
    let mut n = Vec::new();
    assert_eq!(
        e.rewrite_one(&r, "<h!u@b.c>", flag::SMTP, None, None, &mut n),
        Some("u@h".into())
    );
    assert_eq!(e.rewrite_address(&r, "xa@y", true, false, &mut n), "za@w");
}

#[test]
fn transport_rules_refuse_envelope_flags() {
    assert!(Rules::transport("*@a  b@c  F").is_err());
    let r = Rules::transport("*@a  $1@c : x@y  z@w  f").unwrap();
    assert_eq!(r.rules.len(), 2);
    assert_eq!(r.rules[0].flags, flag::ALL_HEADERS);
}

#[test]
fn local_address_headers_are_qualified() {
    let (cfg, r) = setup("");
    let ctx = MapContext::new();
    let e = Env {
        cfg: &cfg,
        ctx: &ctx,
        qualify_sender: "s.example",
        qualify_recipient: "r.example",
        charset: "ISO-8859-1",
    };
    let mut n = Vec::new();
    let mut q = |t: &str| e.rewrite_header(&r, t, true, true, &mut n);
    assert_eq!(q("from: me\n").as_deref(), Some("from: me@s.example\n"));
    assert_eq!(
        q("To: a, B <b>, c@x (C), \"d, e\" <d> (z)\n").as_deref(),
        Some("To: a@r.example, B <b@r.example>, c@x (C), \"d, e\" <d@r.example> (z)\n")
    );
    assert_eq!(q("To: x (c)\n").as_deref(), Some("To: x@r.example (c)\n"));
    assert_eq!(q("To: a@b\n"), None);
    assert_eq!(q("Subject: me\n"), None);
    assert_eq!(q("To: group: a@b;\n"), None);
    assert_eq!(
        q("To: group: a, b;\n").as_deref(),
        Some("To: group: a@r.example, b@r.example;\n")
    );
}
