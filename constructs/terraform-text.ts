/**
 * Terraform reads every string in the synthesised JSON as a template: `${…}` interpolates and `%{…}`
 * is a directive. Literal text (shell scripts, config files) must escape both, or `terraform plan`
 * rejects the stack (or, worse, substitutes something). Terraform turns `$${` back into `${`.
 */
export function literal(text: string): string {
  // A function replacement: in a replacement *string* "$$" would itself mean "$".
  // cdktf tokens (`${TfToken[…]}`) are left alone: cdktf resolves them to references afterwards.
  return text.replace(/\$\{(?!TfToken\[)/g, () => "$${").replace(/%\{/g, () => "%%{");
}

/** The inverse, for readers of the synthesised JSON (policy rules, tests, `pgharbor review`). */
export function unliteral(text: string): string {
  return text.replace(/\$\$\{/g, () => "${").replace(/%%\{/g, () => "%{");
}
