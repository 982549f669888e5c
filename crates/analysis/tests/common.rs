//! Helpers shared by the tests: seeded Gaussian samples and an XML well-formedness check.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// `d × n` samples of N(mean, std²·I).
pub fn normal(
    d: usize,
    n: usize,
    mean: f64,
    std: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> DMatrix<f64> {
    DMatrix::from_fn(d, n, |_, _| {
        let z: f64 = StandardNormal.sample(rng);
        mean + std * z
    })
}

/// Checks that `s` is well-formed XML (elements nest and close, attributes are quoted,
/// text has no raw `<` and only known entities) and returns every element's start tag
/// text (name and attributes), in document order.
pub fn check_xml(s: &str) -> Result<Vec<String>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut stack: Vec<String> = Vec::new();
    let mut tags = Vec::new();
    let mut roots = 0;
    let check_text = |t: &str| -> Result<(), String> {
        let mut rest = t;
        while let Some(k) = rest.find('&') {
            let after = &rest[k + 1..];
            let end = after
                .find(';')
                .ok_or_else(|| format!("unterminated entity in {t:?}"))?;
            let ent = &after[..end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
                || (ent.starts_with('#') && ent.len() > 1);
            if !ok {
                return Err(format!("unknown entity &{ent};"));
            }
            rest = &after[end + 1..];
        }
        Ok(())
    };
    while i < b.len() {
        if b[i] != b'<' {
            let j = s[i..].find('<').map_or(b.len(), |k| i + k);
            let text = &s[i..j];
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            check_text(text)?;
            i = j;
            continue;
        }
        if s[i..].starts_with("<?") {
            i += s[i..].find("?>").ok_or("unterminated <?")? + 2;
            continue;
        }
        if s[i..].starts_with("<!--") {
            i += s[i..].find("-->").ok_or("unterminated comment")? + 3;
            continue;
        }
        // Find the end of the tag, skipping quoted attribute values.
        let mut j = i + 1;
        let mut quote: Option<u8> = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'"' | b'\'') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (Some(_), b'<') => return Err("raw < in an attribute value".into()),
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        if j >= b.len() {
            return Err("unterminated tag".into());
        }
        let inner = &s[i + 1..j];
        i = j + 1;
        if let Some(name) = inner.strip_prefix('/') {
            let top = stack
                .pop()
                .ok_or_else(|| format!("closing </{name}> without opening"))?;
            if top != name.trim() {
                return Err(format!("<{top}> closed by </{name}>"));
            }
            continue;
        }
        let self_closing = inner.ends_with('/');
        let body = inner.trim_end_matches('/');
        let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
        {
            return Err(format!("bad element name in <{inner}>"));
        }
        check_attributes(&body[name.len()..])?;
        if stack.is_empty() {
            roots += 1;
        }
        tags.push(body.to_string());
        if !self_closing {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements: {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("expected one root element, found {roots}"));
    }
    Ok(tags)
}

fn check_attributes(mut a: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    loop {
        a = a.trim_start();
        if a.is_empty() {
            return Ok(());
        }
        let eq = a
            .find('=')
            .ok_or_else(|| format!("attribute without value: {a:?}"))?;
        let name = a[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name {name:?}"));
        }
        if seen.contains(&name.to_string()) {
            return Err(format!("duplicate attribute {name}"));
        }
        seen.push(name.to_string());
        let rest = a[eq + 1..].trim_start();
        let q = rest.chars().next().ok_or("missing attribute value")?;
        if q != '"' && q != '\'' {
            return Err(format!("unquoted attribute {name}"));
        }
        let end = rest[1..].find(q).ok_or("unterminated attribute value")?;
        if rest[1..1 + end].contains('&') && !rest[1..1 + end].contains(';') {
            return Err(format!("raw & in attribute {name}"));
        }
        a = &rest[end + 2..];
    }
}

#[test]
fn xml_checker_rejects_broken_documents() {
    assert!(check_xml("<a><b x=\"1\"/>t &amp; u</a>").is_ok());
    assert!(check_xml("<a><b></a>").is_err());
    assert!(check_xml("<a x=1></a>").is_err());
    assert!(check_xml("<a>x < y</a>").is_err());
    assert!(check_xml("<a>&nbsp;</a>").is_err());
    assert!(check_xml("<a/><b/>").is_err());
    assert!(check_xml("<a x=\"1\" x=\"2\"/>").is_err());
}
