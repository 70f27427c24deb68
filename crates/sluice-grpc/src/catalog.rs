//! The catalog: every service, method and message the gRPC backends may use, loaded once per
//! config (at start-up and on each reload) and shared by every backend.
//!
//! KrakenD Enterprise reads binary descriptor sets (`.pb`, as `protoc --descriptor_set_out
//! --include_imports` writes them). Sluice reads those and `.proto` sources too, compiled at
//! start-up in pure Rust (`protox`, no `protoc` on the gateway's machine): each entry is a file
//! or a folder (scanned recursively for `.pb` and `.proto` files). A `.proto` file's imports are
//! resolved within the catalog: against the folder entry it was found in (or its own folder
//! for a file entry), against the files of the descriptor sets, and against the well-known
//! types (`google/protobuf/*.proto`), which are always available. Where two entries define
//! the same file, the first one listed wins, as in KrakenD.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;
use prost_reflect::prost::Message as _;
use prost_reflect::prost_types::{FileDescriptorProto, FileDescriptorSet};
use sluice_config::GrpcCatalog;

/// The largest catalog file read (a descriptor set or a `.proto` source).
const MAX_FILE_BYTES: u64 = 64 << 20;
/// The most files a folder scan considers, and how deep it goes.
const MAX_SCANNED_FILES: usize = 10_000;
const MAX_SCAN_DEPTH: usize = 16;

/// A loaded catalog: the descriptors of every file, their imports and the well-known types.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: DescriptorPool,
}

/// A `.proto` file to compile, and the folder its imports are resolved from.
#[derive(Debug)]
struct Source {
    /// Index of the catalog entry it came from.
    entry: usize,
    path: PathBuf,
    root: PathBuf,
}

impl Catalog {
    /// Loads every entry of the service's `grpc.catalog`. Each problem is reported with the
    /// config file and the JSON path of the entry at fault.
    pub fn load(config_file: &Path, catalog: &GrpcCatalog) -> Result<Self, Vec<String>> {
        let file = config_file.display();
        let at = |i: usize| format!("{file}: {}[{i}]", catalog.json_path);
        let mut errors = Vec::new();
        let mut sets: Vec<(usize, FileDescriptorSet)> = Vec::new();
        let mut sources: Vec<Source> = Vec::new();
        for (i, path) in catalog.catalog.iter().enumerate() {
            let written = catalog.written.get(i).map_or("", String::as_str);
            let metadata = match std::fs::metadata(path) {
                Ok(metadata) => metadata,
                Err(e) => {
                    errors.push(format!(
                        "{}: cannot read {written:?} ({}): {e}",
                        at(i),
                        path.display()
                    ));
                    continue;
                }
            };
            if metadata.is_dir() {
                let mut found = Vec::new();
                if let Err(e) = scan(path, 0, &mut found) {
                    errors.push(format!("{}: {written:?}: {e}", at(i)));
                    continue;
                }
                if found.is_empty() {
                    errors.push(format!(
                        "{}: the folder {written:?} holds no .pb or .proto file",
                        at(i)
                    ));
                }
                for found in found {
                    match kind_of(&found) {
                        Some(Kind::DescriptorSet) => match read_set(&found) {
                            Ok(set) => sets.push((i, set)),
                            Err(e) => errors.push(format!("{}: {e}", at(i))),
                        },
                        Some(Kind::Proto) => sources.push(Source {
                            entry: i,
                            path: found,
                            root: path.clone(),
                        }),
                        None => {}
                    }
                }
                continue;
            }
            match kind_of(path) {
                Some(Kind::DescriptorSet) => match read_set(path) {
                    Ok(set) => sets.push((i, set)),
                    Err(e) => errors.push(format!("{}: {e}", at(i))),
                },
                Some(Kind::Proto) => sources.push(Source {
                    entry: i,
                    path: path.clone(),
                    root: path
                        .parent()
                        .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
                }),
                None => errors.push(format!(
                    "{}: {written:?} is neither a descriptor set (.pb, from protoc \
                     --descriptor_set_out --include_imports) nor a .proto file",
                    at(i)
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // The descriptor sets first, the first definition of a file winning.
        let mut names = HashSet::new();
        let mut files: Vec<FileDescriptorProto> = Vec::new();
        for (_, set) in &sets {
            for f in &set.file {
                if names.insert(f.name().to_owned()) {
                    files.push(f.clone());
                }
            }
        }
        let mut pool = DescriptorPool::new();
        if let Err(e) = pool.add_file_descriptor_protos(files.clone()) {
            return Err(vec![format!(
                "{file}: {}: the descriptor sets do not form a whole: {e} (write them with \
                 protoc --include_imports, or list the sets that hold the missing files)",
                catalog.json_path
            )]);
        }

        // Then the .proto sources, their imports resolved within the catalog.
        if !sources.is_empty() {
            let compiled = compile(&sources, files, &at)?;
            let fresh: Vec<FileDescriptorProto> = compiled
                .file
                .into_iter()
                .filter(|f| names.insert(f.name().to_owned()))
                .collect();
            if let Err(e) = pool.add_file_descriptor_protos(fresh) {
                return Err(vec![format!("{file}: {}: {e}", catalog.json_path)]);
            }
        }
        Ok(Self { pool })
    }

    /// A catalog of an already built pool (tests, tools).
    pub fn from_pool(pool: DescriptorPool) -> Self {
        Self { pool }
    }

    /// The descriptors.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

/// Compiles the `.proto` sources; imports resolve against their roots, the descriptor sets'
/// files and the well-known types.
fn compile(
    sources: &[Source],
    set_files: Vec<FileDescriptorProto>,
    at: &dyn Fn(usize) -> String,
) -> Result<FileDescriptorSet, Vec<String>> {
    use protox::file::{
        ChainFileResolver, DescriptorSetFileResolver, GoogleFileResolver, IncludeFileResolver,
    };
    let mut resolver = ChainFileResolver::new();
    let mut roots: Vec<&Path> = Vec::new();
    for source in sources {
        if !roots.contains(&source.root.as_path()) {
            roots.push(&source.root);
            resolver.add(IncludeFileResolver::new(source.root.clone()));
        }
    }
    resolver.add(DescriptorSetFileResolver::new(FileDescriptorSet {
        file: set_files,
    }));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    let mut errors = Vec::new();
    for source in sources {
        // Named relative to its root, as an import of it would be written.
        let name = source
            .path
            .strip_prefix(&source.root)
            .unwrap_or(&source.path)
            .to_path_buf();
        if let Err(e) = compiler.open_file(&name) {
            errors.push(format!("{}: {}", at(source.entry), describe(&e)));
        }
    }
    if errors.is_empty() {
        Ok(compiler.file_descriptor_set())
    } else {
        Err(errors)
    }
}

/// A compiler error with its place (`flights.proto:12:5: ...`) when it has one.
fn describe(error: &protox::Error) -> String {
    // protox's Debug form is the one with the file, line and column.
    format!("{error:?}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DescriptorSet,
    Proto,
}

fn kind_of(path: &Path) -> Option<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("pb") => Some(Kind::DescriptorSet),
        Some("proto") => Some(Kind::Proto),
        _ => None,
    }
}

/// The `.pb` and `.proto` files under `dir`, sorted, within the scan bounds.
fn scan(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), String> {
    if depth > MAX_SCAN_DEPTH {
        return Err(format!(
            "folders nested deeper than {MAX_SCAN_DEPTH} levels at {}",
            dir.display()
        ));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            scan(&entry, depth + 1, found)?;
        } else if kind_of(&entry).is_some() {
            if found.len() >= MAX_SCANNED_FILES {
                return Err(format!(
                    "more than {MAX_SCANNED_FILES} .pb and .proto files"
                ));
            }
            found.push(entry);
        }
    }
    Ok(())
}

fn read_set(path: &Path) -> Result<FileDescriptorSet, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
        format!(
            "{} is not a descriptor set (protoc --descriptor_set_out writes one): {e}",
            path.display()
        )
    })
}
