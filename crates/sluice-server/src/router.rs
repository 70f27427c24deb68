//! Routing: `{param}` templates to endpoint pipelines, with KrakenD's (gin's) 404/405 answers,
//! trailing-slash and letter-case redirects and `auto_options`.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;
use sluice_proxy::EndpointPipeline;

/// The endpoints of one path template, by method.
#[derive(Debug)]
pub(crate) struct PathRoutes {
    template: String,
    methods: Vec<(Method, Arc<EndpointPipeline>)>,
}

impl PathRoutes {
    pub(crate) fn get(&self, method: &Method) -> Option<&Arc<EndpointPipeline>> {
        self.methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, p)| p)
    }

    /// The `Allow` header value.
    pub(crate) fn allow(&self) -> String {
        let mut methods: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        methods.push("OPTIONS");
        methods.join(", ")
    }
}

/// What a path resolves to.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    /// A route, with its raw (still percent-encoded) params.
    Found(&'a PathRoutes, Vec<(String, String)>),
    /// No route, but this other path has one.
    Redirect(String),
    /// Nothing.
    NotFound,
}

#[derive(Debug)]
pub(crate) struct Router {
    exact: matchit::Router<usize>,
    lowercase: matchit::Router<usize>,
    routes: Vec<PathRoutes>,
    redirect_trailing_slash: bool,
    redirect_fixed_path: bool,
}

impl Router {
    pub(crate) fn new(
        pipelines: Vec<EndpointPipeline>,
        redirect_trailing_slash: bool,
        redirect_fixed_path: bool,
    ) -> Result<Self, Vec<String>> {
        let mut by_path: HashMap<String, usize> = HashMap::new();
        let mut routes: Vec<PathRoutes> = Vec::new();
        for pipeline in pipelines {
            let template = pipeline.endpoint.endpoint.clone();
            let method = pipeline.endpoint.method.clone();
            let index = *by_path.entry(template.clone()).or_insert_with(|| {
                routes.push(PathRoutes {
                    template,
                    methods: Vec::new(),
                });
                routes.len() - 1
            });
            routes[index].methods.push((method, Arc::new(pipeline)));
        }
        let mut exact = matchit::Router::new();
        let mut lowercase = matchit::Router::new();
        let mut errors = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            if let Err(e) = exact.insert(route.template.as_str(), index) {
                errors.push(format!(
                    "endpoint {:?} cannot be routed: {e}",
                    route.template
                ));
            }
            // A letter-case twin may collide with another route; the exact match wins anyway.
            let _ = lowercase.insert(lowercase_literals(&route.template), index);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            exact,
            lowercase,
            routes,
            redirect_trailing_slash,
            redirect_fixed_path,
        })
    }

    pub(crate) fn lookup(&self, path: &str) -> Lookup<'_> {
        if let Ok(matched) = self.exact.at(path) {
            let params = matched
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            return Lookup::Found(&self.routes[*matched.value], params);
        }
        if self.redirect_trailing_slash {
            let toggled = match path.strip_suffix('/') {
                Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
                Some(_) => String::new(),
                None => format!("{path}/"),
            };
            if !toggled.is_empty() && self.exact.at(&toggled).is_ok() {
                return Lookup::Redirect(toggled);
            }
        }
        if self.redirect_fixed_path {
            let lowered = path.to_ascii_lowercase();
            if let Ok(matched) = self.lowercase.at(&lowered) {
                let route = &self.routes[*matched.value];
                if let Some(fixed) = restore_case(&route.template, path)
                    && fixed != path
                    && self.exact.at(&fixed).is_ok()
                {
                    return Lookup::Redirect(fixed);
                }
            }
        }
        Lookup::NotFound
    }
}

/// `/StAtic/{Id}` -> `/static/{Id}`: literal segments lower-cased, param names kept.
fn lowercase_literals(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.contains('{') {
                segment.to_owned()
            } else {
                segment.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical path for a request path that matched a template ignoring case: literal
/// segments from the template, param segments from the request.
fn restore_case(template: &str, path: &str) -> Option<String> {
    let template_segments: Vec<&str> = template.split('/').collect();
    let path_segments: Vec<&str> = path.split('/').collect();
    if template_segments.len() != path_segments.len() {
        return None;
    }
    let fixed: Vec<&str> = template_segments
        .iter()
        .zip(&path_segments)
        .map(|(t, p)| if t.contains('{') { *p } else { *t })
        .collect();
    Some(fixed.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_literal_case_and_keeps_params() {
        assert_eq!(
            restore_case("/static/{id}", "/StAtic/AbC").as_deref(),
            Some("/static/AbC")
        );
        assert_eq!(lowercase_literals("/StAtic/{Id}"), "/static/{Id}");
    }
}
