use super::*;

fn stat(rule: &Rule) -> &Term {
    match rule {
        Rule::Compare { left, .. } => &left.factors[0],
        other => panic!("not a comparison: {other:?}"),
    }
}

#[test]
fn the_issue_examples_parse() {
    for text in [
        "p(99) < 300ms during fault",
        "ratio(status == 206) > 0.9 during fault",
        "rate(5xx) < 1% overall",
        "metric(seawall_fallbacks_total{route=\"api\", reason=\"x\"}) >= 1",
        "breaker(payments) == open within 2s of fault start",
        "recovered within 10s after fault end",
        "retries <= 0.2 * requests",
    ] {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn units_become_seconds_and_ratios() {
    let Rule::Compare { right, window, .. } = parse("p(99) < 300ms during fault").unwrap() else {
        panic!()
    };
    assert_eq!(right.factors, vec![Term::Number(0.3)]);
    assert_eq!(window, WindowRef::During("fault".into()));
    let Rule::Compare { right, .. } = parse("rate(5xx) < 1%").unwrap() else {
        panic!()
    };
    assert_eq!(right.factors, vec![Term::Number(0.01)]);
}

#[test]
fn a_bare_rule_is_over_the_whole_load() {
    let rule = parse("max < 1s").unwrap();
    assert!(matches!(
        rule,
        Rule::Compare {
            window: WindowRef::Overall,
            ..
        }
    ));
    assert_eq!(stat(&rule), &Term::Stat(Stat::Max));
}

#[test]
fn an_unknown_statistic_is_named_with_the_list() {
    let e = parse("p99 < 300ms").unwrap_err();
    assert!(e.message.contains("unknown statistic `p99`"), "{e}");
    assert!(e.hint.contains("p(N)"));
    assert_eq!(e.at, 1);
}

#[test]
fn an_unknown_unit_or_class_is_an_error() {
    assert!(parse("p(99) < 3 hours").is_err());
    assert!(
        parse("p(99) < 3h")
            .unwrap_err()
            .message
            .contains("unknown unit")
    );
    assert!(
        parse("ratio(teapots) > 0.1")
            .unwrap_err()
            .message
            .contains("unknown request class")
    );
    assert!(
        parse("breaker(x) == ajar within 1s of f start")
            .unwrap_err()
            .message
            .contains("ajar")
    );
}

#[test]
fn trailing_words_are_refused() {
    let e = parse("p(99) < 1s during fault please").unwrap_err();
    assert!(e.message.contains("please"), "{e}");
}
