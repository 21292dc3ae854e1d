//! The granule request the benchmarks decode with: every beam, no filters,
//! the named variables (paths under a beam group) in `region`.

use std::sync::Arc;

use icesat2::granule::{self, BeamSelection, OutputVariable, Request};
use icesat2::region::Region;

pub fn request(region: Region, paths: &[&str]) -> Request {
    let variables: Vec<OutputVariable> = paths
        .iter()
        .map(|path| {
            let spec = granule::variables::lookup(path).unwrap();
            OutputVariable {
                spec,
                name: spec.name().to_string(),
            }
        })
        .collect();
    let schema = granule::output_schema(&variables);
    Request {
        variables,
        beams: BeamSelection::All,
        night_only: false,
        drop_fill: vec![],
        time_window: None,
        except_window: None,
        row_filter: None,
        resolution: Default::default(),
        region: Arc::new(region),
        schema,
    }
}
