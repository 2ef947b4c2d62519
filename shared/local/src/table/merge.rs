//! The merge of the item runs' sorted iterators: each key once, with its newest value. Reads
//! use it across every run, merges across the runs they replace.

/// Visits the items of `sources` (sorted iterators, oldest run first) in key order, each key
/// once with its newest value, until `f` returns false. Keys and values are handed over as
/// read (no copy), so a merge can write them on as they are.
///
/// # Errors
/// The first error an iterator returns.
pub fn merged<I>(
    mut sources: Vec<I>,
    f: &mut dyn FnMut(fjall::Slice, fjall::Slice) -> bool,
) -> std::result::Result<(), fjall::Error>
where
    I: Iterator<Item = fjall::Guard>,
{
    let mut heads: Vec<Option<(fjall::Slice, fjall::Slice)>> = Vec::with_capacity(sources.len());
    for source in &mut sources {
        heads.push(source.next().map(|g| g.into_inner()).transpose()?);
    }
    loop {
        // The smallest key; of equal keys the newest run's (the last one found).
        let mut min: Option<usize> = None;
        for (i, head) in heads.iter().enumerate() {
            let Some((key, _)) = head else { continue };
            match min {
                Some(m) if heads[m].as_ref().is_some_and(|(k, _)| k < key) => {}
                _ => min = Some(i),
            }
        }
        let Some(m) = min else { return Ok(()) };
        let Some((key, value)) = heads[m].take() else {
            return Ok(());
        };
        // Older runs' items of the same key are passed over.
        for (i, head) in heads.iter_mut().enumerate() {
            if i == m || head.as_ref().is_some_and(|(k, _)| *k == key) {
                *head = sources[i].next().map(|g| g.into_inner()).transpose()?;
            }
        }
        if !f(key, value) {
            return Ok(());
        }
    }
}
