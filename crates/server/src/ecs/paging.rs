//! `maxResults` / `nextToken` pagination over key-ordered listings. A token is the hex of the
//! last key returned, so a page continues exactly after it even while records come and go.

use berth_api::ApiError;

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Checks `maxResults` against ECS's 1..=`max` range; `None` means `max`.
pub fn page_size(max_results: Option<i32>, max: usize) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(max),
        Some(n) if n >= 1 && (n as usize) <= max => Ok(n as usize),
        Some(n) => Err(ApiError::invalid_parameter(format!(
            "maxResults must be between 1 and {max}, got {n}"
        ))),
    }
}

/// Decodes a `nextToken` into the key to continue after.
pub fn after_key(next_token: Option<&str>) -> Result<Option<String>, ApiError> {
    after_key_or(next_token, || {
        ApiError::invalid_parameter("nextToken is not a token that a previous call returned")
    })
}

/// Decodes a token of any service's listing into the key to continue after; a token no call
/// returned is refused with the service's own error, `refused()`.
pub fn after_key_or(
    next_token: Option<&str>,
    refused: impl FnOnce() -> ApiError,
) -> Result<Option<String>, ApiError> {
    let Some(token) = next_token else {
        return Ok(None);
    };
    hex::decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(refused)
}

/// Takes up to `size` items in key order after `after`, and the token for the rest.
pub fn paginate<T>(
    items: impl IntoIterator<Item = (String, T)>,
    after: Option<&str>,
    size: usize,
) -> Page<T> {
    paginate_ordered(items, after, size, false)
}

/// Like [`paginate`] for items given in ascending (`descending == false`) or descending key
/// order: the page continues past `after` in that direction.
pub fn paginate_ordered<T>(
    items: impl IntoIterator<Item = (String, T)>,
    after: Option<&str>,
    size: usize,
    descending: bool,
) -> Page<T> {
    let mut out = Vec::new();
    let mut last_key = None;
    let mut more = false;
    for (key, item) in items {
        let seen = |a: &str| {
            if descending {
                key.as_str() >= a
            } else {
                key.as_str() <= a
            }
        };
        if after.is_some_and(seen) {
            continue;
        }
        if out.len() == size {
            more = true;
            break;
        }
        last_key = Some(key);
        out.push(item);
    }
    let next_token = if more {
        last_key.map(hex::encode)
    } else {
        None
    };
    Page {
        items: out,
        next_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_continue_after_the_last_key() {
        let items: Vec<(String, i32)> = (0..5).map(|i| (format!("k{i}"), i)).collect();
        let first = paginate(items.clone(), None, 2);
        assert_eq!(first.items, vec![0, 1]);
        let after = after_key(first.next_token.as_deref()).unwrap();
        let second = paginate(items.clone(), after.as_deref(), 2);
        assert_eq!(second.items, vec![2, 3]);
        let after = after_key(second.next_token.as_deref()).unwrap();
        let third = paginate(items, after.as_deref(), 2);
        assert_eq!(third.items, vec![4]);
        assert!(third.next_token.is_none());
    }

    #[test]
    fn refuses_bad_sizes_and_tokens() {
        assert!(page_size(Some(0), 100).is_err());
        assert!(page_size(Some(101), 100).is_err());
        assert_eq!(page_size(None, 100).unwrap(), 100);
        assert!(after_key(Some("zz")).is_err());
    }
}
