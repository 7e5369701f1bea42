use super::*;

fn ctx() -> MapContext {
    MapContext::new()
        .var("local_part", "Blackhole")
        .var("domain", "example.com")
        .var("evil", "${if eq{a}{a}{PWNED}}")
        .var("empty", "")
        .var("h_subject:", "hi")
        .file(
            "/aliases",
            "# c\npostmaster: root\nfoo: \"quoted\" x\n  continued\n*: catchall\n",
        )
}

fn x(s: &str) -> Result<String, ExpandError> {
    expand(s, &ctx())
}

#[test]
fn variables_and_escapes() {
    assert_eq!(
        x("a $domain ${domain}b").unwrap(),
        "a example.com example.comb"
    );
    assert_eq!(x("\\$x\\t\\N$no${}\\N").unwrap(), "$x\t$no${}");
    assert_eq!(x("$evil").unwrap(), "${if eq{a}{a}{PWNED}}");
    assert_eq!(
        x("$nosuch"),
        Err(ExpandError::UnknownVariable("nosuch".into()))
    );
    assert!(x("${domain").is_err());
    assert_eq!(
        x("$ x"),
        Err(ExpandError::Syntax(
            "$ not followed by letter, digit, or {".into()
        ))
    );
    assert!(x("${ domain}").is_err());
    assert_eq!(x("$h_subject: [$h_x-missing:]").unwrap(), "hi []");
    // As in Exim, a header in braces is taken for an operator.
    assert_eq!(
        x("${header_subject:}").unwrap_err().to_string(),
        "unknown expansion operator \"header_subject\""
    );
    assert_eq!(
        x("${nosuch}").unwrap_err().to_string(),
        "unknown variable in \"${nosuch}\""
    );
    assert_eq!(x("${if match{ab}{(b)}{$1${1}}}").unwrap(), "bb");
}

#[test]
fn if_conditions() {
    assert_eq!(x("${if eq {server}{server} {yes}{no}}").unwrap(), "yes");
    assert_eq!(x("${if eq {}{server}{no}{yes}}").unwrap(), "yes");
    assert_eq!(x("${if !eq{a}{b}{y}{n}}").unwrap(), "y");
    assert_eq!(x("${if eqi{ABC}{abc}{y}{n}}").unwrap(), "y");
    assert_eq!(
        x("${if eq {$local_part}{blackhole}{:blackhole:}}").unwrap(),
        ""
    );
    assert_eq!(
        x("${if eqi {$local_part}{blackhole}{:blackhole:}}").unwrap(),
        ":blackhole:"
    );
    assert_eq!(x("${if == {10}{ 10 }{y}{n}}").unwrap(), "y");
    assert_eq!(
        x("${if == {10}{0xa}{y}{n}}").unwrap_err().to_string(),
        "invalid integer \"0xa\""
    );
    assert_eq!(x("${if > {}{-1}{y}{n}}").unwrap(), "y");
    assert_eq!(x("${if < {1K}{1000}{y}{n}}").unwrap(), "n");
    assert_eq!(x("${if and{{eq{a}{a}}{def:domain}}{y}{n}}").unwrap(), "y");
    assert_eq!(x("${if or{{eq{a}{b}}{def:empty}}{y}{n}}").unwrap(), "n");
    assert_eq!(x("${if isip{127.0.0.1}{y}{n}}").unwrap(), "y");
    assert_eq!(x("${if isip6{127.0.0.1}{y}{n}}").unwrap(), "n");
    assert_eq!(x("${if exists{/aliases}{y}{n}}").unwrap(), "y");
    assert_eq!(x("${if bool{ yes }{y}{n}}").unwrap(), "y");
    assert!(x("${if bool{maybe}{y}{n}}").is_err());
    assert_eq!(x("${if eq{a}{a}}").unwrap(), "true");
    assert_eq!(
        x("${if eq{a}{b}{y}fail}"),
        Err(ExpandError::ForcedFail("if".into()))
    );
    assert_eq!(
        x("${if match{abc123}{^([a-z]+)([0-9]+)\\$}{$2-$1}{n}}").unwrap(),
        "123-abc"
    );
    // The branch not taken is not evaluated (no unknown-variable error).
    assert_eq!(x("${if eq{a}{a}{y}{$nosuch}}").unwrap(), "y");
    assert!(matches!(
        x("${if frob{a}{b}}"),
        Err(ExpandError::UnknownCondition(_))
    ));
}

#[test]
fn operators_and_items() {
    assert_eq!(x("${lc:ABC}${uc:def}").unwrap(), "abcDEF");
    assert_eq!(x("${length_3:abcdef}${length{2}{xyz}}").unwrap(), "abcxy");
    assert_eq!(
        x("${substr_1_2:abcdef}|${substr{-2}{abcdef}}|${substr{-2}{1}{abcdef}}").unwrap(),
        "bc|abcd|e"
    );
    assert_eq!(x("${sg{abcabc}{b}{X}}").unwrap(), "aXcaXc");
    assert_eq!(x("${sg{abc}{(b)}{<\\$1>}}").unwrap(), "a<b>c");
    assert_eq!(x("${tr{abcabc}{ab}{xy}}").unwrap(), "xycxyc");
    assert_eq!(
        x("${domain:A <u@x.y>}/${local_part:u@x.y}").unwrap(),
        "x.y/u"
    );
    assert_eq!(x("${eval:2+3*(4-1)}").unwrap(), "11");
    assert_eq!(x("${strlen:abcd}").unwrap(), "4");
    assert_eq!(x("${extract{b}{a=1 b=\"x y\"}}").unwrap(), "x y");
    assert_eq!(x("${extract{2}{:}{a:b:c}}").unwrap(), "b");
    assert!(matches!(
        x("${frob:x}"),
        Err(ExpandError::UnknownOperator(_))
    ));
}

#[test]
fn more_operators() {
    assert_eq!(x("${base62:62}|${quote:a.b}").unwrap(), "000010|a.b");
    assert_eq!(x("${quote:a b\\\"c}").unwrap(), "\"a b\\\"c\"");
    assert_eq!(x("${listcount:a:b::c:d}").unwrap(), "3");
    assert_eq!(
        x("${quote_local_part:a.b}|${quote_local_part:a b}|${quote_local_part:a..b}").unwrap(),
        "a.b|\"a b\"|\"a..b\""
    );
    assert_eq!(
        x("${if inlist{b}{a:b:c}{y}{n}}${if inlisti{B}{a:b}{y}{n}}").unwrap(),
        "yy"
    );
    assert_eq!(
        x("${readfile{/aliases}{,}}").unwrap().matches(',').count(),
        5
    );
}

#[test]
fn list_conditions_need_config() {
    let mut cfg = Config::default();
    cfg.named_lists.insert(
        crate::ListKind::Domain,
        "local_domains",
        "test.ex : *.test.ex",
    );
    let c = ctx();
    let e = |s: &str| expand_with_config(s, &c, &cfg);
    assert_eq!(
        e("${if match_domain{a.test.ex}{+local_domains}{y}{n}}").unwrap(),
        "y"
    );
    assert_eq!(
        e("${if match_address{u@test.ex}{*@+local_domains}{y}{n}}").unwrap(),
        "y"
    );
    assert_eq!(
        e("${if match_ip{10.1.2.3}{127.0.0.1 : 10.0.0.0/8}{y}{n}}").unwrap(),
        "y"
    );
    // Debian's COND_LOCAL_SUBMITTER: no host matches the empty item.
    assert_eq!(e("${if match_ip{}{:@[]}{1}{0}}").unwrap(), "1");
    assert_eq!(e("${if match_ip{}{127.0.0.1}{1}{0}}").unwrap(), "0");
    assert_eq!(e("${if match_local_part{abc}{^a}{y}{n}}").unwrap(), "y");
    assert!(x("${if match_domain{a}{b}{y}{n}}").is_err());
}

#[test]
fn list_items_and_more_operators() {
    assert_eq!(x("${map{a:b:c}{<$item>}}").unwrap(), "<a>:<b>:<c>");
    assert_eq!(x("${map{<, a,b}{${uc:$item}}}").unwrap(), "A,B");
    assert_eq!(
        x("${filter{a:bb:c}{eq{${strlen:$item}}{1}}}").unwrap(),
        "a:c"
    );
    assert_eq!(x("${reduce{1:2:3}{0}{${eval:$value+$item}}}").unwrap(), "6");
    assert_eq!(x("${if forany{a:b}{eq{$item}{b}}{y}{n}}").unwrap(), "y");
    assert_eq!(x("${if forall{a:b}{eq{$item}{b}}{y}{n}}").unwrap(), "n");
    assert_eq!(
        x("${listextract{2}{a:b:c}}|${listextract{-1}{a:b:c}}").unwrap(),
        "b|c"
    );
    assert_eq!(x("${listextract{9}{a:b}{y}{n}}").unwrap(), "n");
    assert_eq!(
        x("${base64:hello}|${base64d:aGVsbG8=}").unwrap(),
        "aGVsbG8=|hello"
    );
    assert_eq!(x("${hex2b64:0001ff}").unwrap(), "AAH/");
    assert_eq!(x("${rxquote:a.b}").unwrap(), "a\\.b");
    assert_eq!(x("${reverse_ip:192.0.2.1}").unwrap(), "1.2.0.192");
    assert_eq!(x("${mask:192.168.10.206/24}").unwrap(), "192.168.10.0/24");
    assert_eq!(
        x("${ipv6norm:2001:0db8:0:0:0:0:0:1}").unwrap(),
        "2001:db8::1"
    );
    assert_eq!(
        x("${time_interval:93784}|${time_eval:1h1s}").unwrap(),
        "1d2h3m4s|3601"
    );
    // $item outside map has no value.
    assert_eq!(x("[$item]").unwrap(), "[]");
    assert_eq!(x("[$sender_helo_name][$acl_m_x]").unwrap(), "[][]");
    let mut cfg = Config::default();
    cfg.named_lists
        .insert(crate::ListKind::Domain, "d", "a : b");
    assert_eq!(
        expand_with_config("${listnamed:d}", &ctx(), &cfg).unwrap(),
        "a : b"
    );
}

#[test]
fn lookups() {
    assert_eq!(x("${lookup{postmaster}lsearch{/aliases}}").unwrap(), "root");
    assert_eq!(
        x("${lookup{FOO}lsearch{/aliases}{<$value>}{no}}").unwrap(),
        "<\"quoted\" x continued>"
    );
    assert_eq!(x("${lookup{zz}lsearch{/aliases}{y}{n}}").unwrap(), "n");
    assert_eq!(x("${lookup{zz}lsearch*{/aliases}}").unwrap(), "catchall");
    assert_eq!(x("${lookup{zz}lsearch{/aliases}}").unwrap(), "");
    // $value in the "no" string is the outer lookup's value.
    assert_eq!(
        x("${lookup{postmaster}lsearch{/aliases}{${lookup{zz}lsearch{/aliases}{}{<$value>}}}}")
            .unwrap(),
        "<root>"
    );
    assert_eq!(
        x("${lookup {foo} lsearch {/aliases} {y} {n}}").unwrap(),
        "y"
    );
    assert!(matches!(
        x("${lookup{zz}lsearch{/missing}}"),
        Err(ExpandError::LookupFile(_))
    ));
    assert!(matches!(
        x("${lookup{zz}dbm{/aliases}}"),
        Err(ExpandError::NotSupported(..))
    ));
    assert!(matches!(
        x("${lookup{zz}nosuch{/aliases}}"),
        Err(ExpandError::UnknownLookup(_))
    ));
}

#[test]
fn expand_bool_semantics() {
    let c = ctx();
    for (s, v) in [
        ("", false),
        ("0", false),
        ("no", false),
        ("FALSE", false),
        ("1", true),
        ("yes", true),
        ("true", true),
    ] {
        assert_eq!(expand_bool(s, &c), Ok(v), "{s:?}");
    }
    assert!(expand_bool("maybe", &c).is_err());
    assert!(expand_condition("maybe", &c).unwrap());
}

#[test]
fn dsearch_lookups() {
    let c = MapContext::new()
        .file("/d/present", "x")
        .file("/d/sub/f", "y");
    let l = |s: &str| expand(s, &c);
    assert_eq!(l("${lookup{present}dsearch{/d}}").unwrap(), "present");
    assert_eq!(
        l("${lookup{present}dsearch,ret=full{/d}}").unwrap(),
        "/d/present"
    );
    assert_eq!(l("${lookup{absent}dsearch{/d}{y}{n}}").unwrap(), "n");
    assert_eq!(
        l("${lookup{sub}dsearch,filter=file{/d}{y}{n}}").unwrap(),
        "n"
    );
    assert_eq!(
        l("${lookup{sub}dsearch,filter=dir{/d}{y}{n}}").unwrap(),
        "y"
    );
    assert_eq!(l("${lookup{sub/f}dsearch{/d}{y}{n}}").unwrap(), "n");
    assert_eq!(
        l("${lookup{sub/f}dsearch,key=path{/d}{y}{n}}").unwrap(),
        "y"
    );
    assert!(matches!(
        l("${lookup{x}dsearch,cache=no_rd{/d}}"),
        Err(ExpandError::NotSupported(..))
    ));
}
