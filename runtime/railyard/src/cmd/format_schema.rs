//! `railyard format-schema pipeline|mapping`: the JSON Schemas committed under `docs/schema/`.

use crate::exit;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    Pipeline,
    Mapping,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which file format.
    #[arg(value_enum)]
    pub which: Which,
}

pub fn run(args: Args) -> u8 {
    let schema = match args.which {
        Which::Pipeline => railyard_core::model::pipeline_json_schema(),
        Which::Mapping => railyard_core::model::mapping_json_schema(),
    };
    match serde_json::to_string_pretty(&schema) {
        Ok(s) => {
            println!("{s}");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}
