//! The little XML S3 answers with that imgbt reads: a ListObjectsV2 page (`ListBucketResult`) and
//! an error (`Error`, its `Code` and `Message`). Elements are found by name; their text has its
//! entities decoded (the five named ones, and numeric ones in decimal and hex).

/// One page of a ListObjectsV2 answer.
#[derive(Debug, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<(String, u64)>,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
}

/// Reads a `ListBucketResult`.
pub fn list_page(xml: &str) -> Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err("not a ListBucketResult".into());
    }
    let mut objects = Vec::new();
    let mut rest = xml;
    while let Some((contents, after)) = element(rest, "Contents") {
        let key = text(contents, "Key")?.ok_or("an object without a Key")?;
        let size = match text(contents, "Size")? {
            Some(size) => size
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("a Size that is not a number: {:.40}", size))?,
            None => 0,
        };
        objects.push((key, size));
        rest = after;
    }
    let is_truncated = matches!(
        text(xml, "IsTruncated")?.as_deref().map(str::trim),
        Some("true")
    );
    let next_continuation_token = text(xml, "NextContinuationToken")?;
    Ok(ListPage {
        objects,
        is_truncated,
        next_continuation_token,
    })
}

/// An S3 error's `Code` and `Message`, when the body is one.
pub fn error(xml: &str) -> Option<(String, Option<String>)> {
    let (body, _) = element(xml, "Error")?;
    let code = text(body, "Code").ok()??;
    let message = text(body, "Message").ok().flatten();
    Some((code, message))
}

/// The inside of the first `<name>…</name>` in `xml` (or `<name/>`: empty), and what follows it.
fn element<'a>(xml: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let mut from = 0;
    loop {
        let at = from + xml[from..].find('<')?;
        let tag = &xml[at + 1..];
        let Some(after_name) = tag.strip_prefix(name) else {
            from = at + 1;
            continue;
        };
        // `<Name>`, `<Name attr="…">` or `<Name/>`; not `<NameLonger>`.
        match after_name.chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\r') | Some('\n') | Some('/') => {}
            _ => {
                from = at + 1;
                continue;
            }
        }
        let open_end = at + 1 + tag.find('>')?;
        if xml[..open_end].ends_with('/') {
            return Some(("", &xml[open_end + 1..]));
        }
        let inner_start = open_end + 1;
        let close = format!("</{name}>");
        let inner_len = xml[inner_start..].find(&close)?;
        let inner = &xml[inner_start..inner_start + inner_len];
        return Some((inner, &xml[inner_start + inner_len + close.len()..]));
    }
}

/// The decoded text of the first `<name>` element in `xml`, if there is one.
fn text(xml: &str, name: &str) -> Result<Option<String>, String> {
    match element(xml, name) {
        Some((inner, _)) => decode(inner).map(Some),
        None => Ok(None),
    }
}

/// XML text with its entities and character references replaced.
pub fn decode(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .find(';')
            .filter(|&end| end <= 10)
            .ok_or("an unterminated entity")?;
        let entity = &after[..end];
        let ch = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("an unknown entity &{entity};"))?
            }
        };
        out.push(ch);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_with_entities_and_a_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>v/</Prefix>
<KeyCount>3</KeyCount><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>v/a &amp; b+c.png</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>v/&lt;t&gt; &#233;&#xE9;&#x1F408; &apos;q&apos;</Key><Size>0</Size></Contents>
<Contents><Key>v/ space </Key><Size> 7 </Size></Contents>
<NextContinuationToken>v/ space &amp;</NextContinuationToken></ListBucketResult>"#;
        let page = list_page(xml).unwrap();
        assert_eq!(
            page.objects,
            vec![
                ("v/a & b+c.png".to_owned(), 12),
                ("v/<t> éé🐈 'q'".to_owned(), 0),
                ("v/ space ".to_owned(), 7),
            ]
        );
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("v/ space &"));
    }

    #[test]
    fn an_empty_last_page() {
        let xml = "<ListBucketResult><Name>b</Name><Prefix/><KeyCount>0</KeyCount>\
                   <IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(
            list_page(xml).unwrap(),
            ListPage {
                objects: vec![],
                is_truncated: false,
                next_continuation_token: None
            }
        );
    }

    #[test]
    fn malformed_pages_are_errors() {
        assert!(list_page("<html>gateway</html>").is_err());
        assert!(
            list_page("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>")
                .is_err()
        );
        assert!(list_page("<ListBucketResult><Contents><Key>a</Key><Size>x</Size></Contents></ListBucketResult>").is_err());
        assert!(
            list_page(
                "<ListBucketResult><Contents><Key>a &bogus; b</Key></Contents></ListBucketResult>"
            )
            .is_err()
        );
        assert!(decode("&#xD800;").is_err(), "a surrogate is no character");
        assert!(decode("a & b").is_err());
    }

    #[test]
    fn similar_names_are_not_confused() {
        let xml = "<ListBucketResult><KeyCount>1</KeyCount><Contents><KeyMarker>no</KeyMarker>\
                   <Key>yes</Key><Size>1</Size></Contents></ListBucketResult>";
        assert_eq!(list_page(xml).unwrap().objects, vec![("yes".to_owned(), 1)]);
    }

    #[test]
    fn an_error_body() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                   <Message>Please reduce your request rate &amp; retry.</Message><RequestId>1</RequestId></Error>";
        assert_eq!(
            error(xml),
            Some((
                "SlowDown".to_owned(),
                Some("Please reduce your request rate & retry.".to_owned())
            ))
        );
        assert_eq!(error("<Error><Message>m</Message></Error>"), None);
        assert_eq!(error("not xml"), None);
    }
}
