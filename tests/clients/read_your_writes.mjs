// read_your_writes.mjs - Apollo Client with the README's read-your-writes link.
//
// Usage: node read_your_writes.mjs URL LINK.mjs TITLE
//   LINK.mjs exports `readYourWrites` (the README's snippet, saved as a module).
// Adds a song titled TITLE through a client using the link, then counts the songs whose
// title holds TITLE twice: through a client without the link, and through the linked one.
// Every request's Songbook-Read-After header is recorded through a fetch wrapper.
// Prints ONE JSON line:
//   {"created": typename, "readAfter": token, "withoutLink": n, "withLink": n,
//    "sent": [{"operationName", "readAfter"}, ...]}
import { pathToFileURL } from 'node:url';
import { ApolloClient, InMemoryCache, HttpLink, ApolloLink, gql } from '@apollo/client';

const [url, linkPath, title] = process.argv.slice(2);
if (!url || !linkPath || !title) {
  console.error('usage: node read_your_writes.mjs URL LINK.mjs TITLE');
  process.exit(2);
}
const { readYourWrites } = await import(pathToFileURL(linkPath).href);

const sent = [];
async function recordingFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  sent.push({
    operationName: JSON.parse(init.body ?? '{}').operationName ?? null,
    readAfter: headers.get('songbook-read-after'),
  });
  return fetch(input, init);
}

const http = () => new HttpLink({ uri: url, fetch: recordingFetch });
const plain = new ApolloClient({ link: http(), cache: new InMemoryCache() });
const linked = new ApolloClient({
  link: ApolloLink.from([readYourWrites, http()]),
  cache: new InMemoryCache(),
});

const CREATE = gql`
  mutation Create($title: String!) {
    createSong(input: { title: $title, artist: "Apollo", source: UPLOAD }) {
      __typename
    }
  }
`;
const FIND = gql`
  query Find($q: String!) {
    songs(search: $q) {
      totalCount
    }
  }
`;
const variables = { title, q: title };
const created = await linked.mutate({ mutation: CREATE, variables, fetchPolicy: 'no-cache' });
const find = (client) => client.query({ query: FIND, variables, fetchPolicy: 'no-cache' });
const withoutLink = await find(plain);
const withLink = await find(linked);
console.log(
  JSON.stringify({
    created: created.data?.createSong?.__typename ?? null,
    readAfter: created.extensions?.readAfter ?? null,
    withoutLink: withoutLink.data.songs.totalCount,
    withLink: withLink.data.songs.totalCount,
    sent,
  }),
);
